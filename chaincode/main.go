// Command registry runs the ModelLedger registry chaincode as a service
// (chaincode-as-a-service) with TLS and required client certificates. See
// README.md for its environment variables.
package main

import (
	"fmt"
	"os"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/modelledger/modelledger/chaincode/internal/server"
	"github.com/modelledger/modelledger/chaincode/registry"
)

func main() {
	cfg, err := server.Load(os.LookupEnv, os.ReadFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "registry: %v\n", err)
		os.Exit(2)
	}
	cc, err := contractapi.NewChaincode(registry.New())
	if err != nil {
		fmt.Fprintf(os.Stderr, "registry: building the chaincode: %v\n", err)
		os.Exit(1)
	}
	srv := &shim.ChaincodeServer{
		CCID:    cfg.ChaincodeID,
		Address: cfg.Address,
		CC:      cc,
		TLSProps: shim.TLSProperties{
			Key:           cfg.TLSKey,
			Cert:          cfg.TLSCert,
			ClientCACerts: cfg.ClientCA,
		},
	}
	fmt.Fprintf(os.Stderr, "registry: serving %s on %s (TLS, client certificates required)\n", cfg.ChaincodeID, cfg.Address)
	if err := srv.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "registry: %v\n", err)
		os.Exit(1)
	}
}
