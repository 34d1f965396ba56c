"""The ledger itself: blocks, their hash chain and decoded transactions."""
