// Package server reads the configuration of the chaincode server
// (chaincode-as-a-service, TLS always on) from environment variables.
package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
)

// The environment variables the server reads. All are required.
const (
	EnvChaincodeID = "CHAINCODE_ID"
	EnvAddress     = "CHAINCODE_SERVER_ADDRESS"
	EnvTLSCert     = "CHAINCODE_TLS_CERT"
	EnvTLSKey      = "CHAINCODE_TLS_KEY"
	EnvTLSClientCA = "CHAINCODE_TLS_CLIENT_CA"
)

// Config is the server configuration: the package id the peer knows the
// chaincode by, the listen address and the PEM material for TLS with
// required client certificates.
type Config struct {
	ChaincodeID string
	Address     string
	TLSCert     []byte
	TLSKey      []byte
	ClientCA    []byte
}

// ConfigError names the environment variable that is missing or wrong. Its
// message never includes file contents.
type ConfigError struct {
	Variable string
	Problem  string
}

// Error returns "<VARIABLE>: <problem>".
func (e *ConfigError) Error() string {
	return e.Variable + ": " + e.Problem
}

// Load reads the configuration through lookupEnv (os.LookupEnv) and
// readFile (os.ReadFile), and checks that the address is host:port, that
// the certificate and key form a pair and that the client CA file holds a
// certificate.
func Load(lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (*Config, error) {
	var cfg Config
	var err error
	if cfg.ChaincodeID, err = required(lookupEnv, EnvChaincodeID); err != nil {
		return nil, err
	}
	if cfg.Address, err = required(lookupEnv, EnvAddress); err != nil {
		return nil, err
	}
	if _, port, splitErr := net.SplitHostPort(cfg.Address); splitErr != nil || port == "" {
		return nil, &ConfigError{Variable: EnvAddress, Problem: fmt.Sprintf("%q is not host:port", cfg.Address)}
	}
	if cfg.TLSCert, err = requiredFile(lookupEnv, readFile, EnvTLSCert); err != nil {
		return nil, err
	}
	if cfg.TLSKey, err = requiredFile(lookupEnv, readFile, EnvTLSKey); err != nil {
		return nil, err
	}
	if cfg.ClientCA, err = requiredFile(lookupEnv, readFile, EnvTLSClientCA); err != nil {
		return nil, err
	}
	return &cfg, cfg.check()
}

func (cfg *Config) check() error {
	if _, err := tls.X509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
		// The tls package's messages describe the problem, never the key.
		return &ConfigError{Variable: EnvTLSCert + "/" + EnvTLSKey, Problem: "not a matching PEM certificate and private key: " + err.Error()}
	}
	if !x509.NewCertPool().AppendCertsFromPEM(cfg.ClientCA) {
		return &ConfigError{Variable: EnvTLSClientCA, Problem: "holds no PEM certificate"}
	}
	return nil
}

func required(lookupEnv func(string) (string, bool), name string) (string, error) {
	value, ok := lookupEnv(name)
	if !ok || strings.TrimSpace(value) == "" {
		return "", &ConfigError{Variable: name, Problem: "must be set"}
	}
	return value, nil
}

func requiredFile(lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error), name string) ([]byte, error) {
	path, err := required(lookupEnv, name)
	if err != nil {
		return nil, err
	}
	data, err := readFile(path)
	if err != nil {
		return nil, &ConfigError{Variable: name, Problem: "cannot read " + path + ": " + rootCause(err)}
	}
	return data, nil
}

// rootCause drops the "open <path>: " prefix of *fs.PathError messages,
// since the path is already in the message.
func rootCause(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}
