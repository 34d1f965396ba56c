package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"strings"
	"testing"
	"time"
)

// pemPair returns a self-signed certificate and its private key, in PEM.
func pemPair(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "registry"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

type fakeEnv struct {
	vars  map[string]string
	files map[string][]byte
}

func (e *fakeEnv) lookup(name string) (string, bool) {
	v, ok := e.vars[name]
	return v, ok
}

func (e *fakeEnv) read(path string) ([]byte, error) {
	data, ok := e.files[path]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
	}
	return data, nil
}

func validEnv(t *testing.T) *fakeEnv {
	cert, key := pemPair(t)
	ca, _ := pemPair(t)
	return &fakeEnv{
		vars: map[string]string{
			EnvChaincodeID: "registry_1.0:0123abcd",
			EnvAddress:     "0.0.0.0:9999",
			EnvTLSCert:     "/tls/server.crt",
			EnvTLSKey:      "/tls/server.key",
			EnvTLSClientCA: "/tls/peer-ca.crt",
		},
		files: map[string][]byte{"/tls/server.crt": cert, "/tls/server.key": key, "/tls/peer-ca.crt": ca},
	}
}

func TestLoad(t *testing.T) {
	env := validEnv(t)
	cfg, err := Load(env.lookup, env.read)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ChaincodeID != "registry_1.0:0123abcd" || cfg.Address != "0.0.0.0:9999" {
		t.Errorf("config %+v", cfg)
	}
	if string(cfg.TLSCert) != string(env.files["/tls/server.crt"]) || string(cfg.TLSKey) != string(env.files["/tls/server.key"]) ||
		string(cfg.ClientCA) != string(env.files["/tls/peer-ca.crt"]) {
		t.Error("PEM material not loaded")
	}
}

func TestLoadRefusals(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(e *fakeEnv)
		variable string
		want     string
	}{
		{"no id", func(e *fakeEnv) { delete(e.vars, EnvChaincodeID) }, EnvChaincodeID, "CHAINCODE_ID: must be set"},
		{"blank id", func(e *fakeEnv) { e.vars[EnvChaincodeID] = " " }, EnvChaincodeID, "CHAINCODE_ID: must be set"},
		{"no address", func(e *fakeEnv) { delete(e.vars, EnvAddress) }, EnvAddress, "CHAINCODE_SERVER_ADDRESS: must be set"},
		{"address without port", func(e *fakeEnv) { e.vars[EnvAddress] = "localhost" }, EnvAddress,
			`CHAINCODE_SERVER_ADDRESS: "localhost" is not host:port`},
		{"address with empty port", func(e *fakeEnv) { e.vars[EnvAddress] = "localhost:" }, EnvAddress,
			`CHAINCODE_SERVER_ADDRESS: "localhost:" is not host:port`},
		{"no cert", func(e *fakeEnv) { delete(e.vars, EnvTLSCert) }, EnvTLSCert, "CHAINCODE_TLS_CERT: must be set"},
		{"no key", func(e *fakeEnv) { delete(e.vars, EnvTLSKey) }, EnvTLSKey, "CHAINCODE_TLS_KEY: must be set"},
		{"no client CA", func(e *fakeEnv) { delete(e.vars, EnvTLSClientCA) }, EnvTLSClientCA, "CHAINCODE_TLS_CLIENT_CA: must be set"},
		{"unreadable key", func(e *fakeEnv) { delete(e.files, "/tls/server.key") }, EnvTLSKey,
			"CHAINCODE_TLS_KEY: cannot read /tls/server.key: file does not exist"},
		{"unreadable client CA", func(e *fakeEnv) { delete(e.files, "/tls/peer-ca.crt") }, EnvTLSClientCA,
			"CHAINCODE_TLS_CLIENT_CA: cannot read /tls/peer-ca.crt: file does not exist"},
		{"client CA not PEM", func(e *fakeEnv) { e.files["/tls/peer-ca.crt"] = []byte("junk") }, EnvTLSClientCA,
			"CHAINCODE_TLS_CLIENT_CA: holds no PEM certificate"},
		{"key of another certificate", func(e *fakeEnv) { _, e.files["/tls/server.key"] = pemPair(t) }, EnvTLSCert + "/" + EnvTLSKey,
			"CHAINCODE_TLS_CERT/CHAINCODE_TLS_KEY: not a matching PEM certificate and private key: tls: private key does not match public key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := validEnv(t)
			tc.edit(env)
			_, err := Load(env.lookup, env.read)
			var cfgErr *ConfigError
			if !errors.As(err, &cfgErr) || cfgErr.Variable != tc.variable || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestLoadNeverPrintsTheKey(t *testing.T) {
	env := validEnv(t)
	key := env.files["/tls/server.key"]
	env.files["/tls/server.key"] = key[:len(key)-40] // a damaged key
	_, err := Load(env.lookup, env.read)
	if err == nil {
		t.Fatal("a damaged key was accepted")
	}
	body := strings.Split(string(key), "\n")[1]
	if strings.Contains(err.Error(), body[:16]) || strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("the message shows key material: %v", err)
	}
}
