"""Ledger queries through the peer's system chaincode ``qscc``: chain height, block of a transaction."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_protos.common import common_pb2, ledger_pb2

from modelledger.sdk.gateway.gateway import Network


@dataclass(frozen=True)
class ChainInfo:
    """The channel as one peer sees it."""

    height: int
    current_block_hash: str


def chain_info(network: Network) -> ChainInfo:
    """Height and current block hash of the channel on the Gateway's peer."""
    raw = network.contract("qscc").evaluate("GetChainInfo", [network.name])
    info = ledger_pb2.BlockchainInfo.FromString(raw)
    return ChainInfo(int(info.height), info.currentBlockHash.hex())


def block_number_of(network: Network, transaction_id: str) -> int:
    """The number of the block that holds ``transaction_id``.

    Raises:
        EvaluateError: The peer does not know the transaction.
    """
    raw = network.contract("qscc").evaluate("GetBlockByTxID", [network.name, transaction_id])
    return int(common_pb2.Block.FromString(raw).header.number)
