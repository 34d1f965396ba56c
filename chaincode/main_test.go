package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the tests run main in a child process of the test binary.
func TestMain(m *testing.M) {
	if os.Getenv("REGISTRY_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// command runs main with exactly the given environment (and, for a test
// binary built with coverage, a place for its coverage data).
func command(t *testing.T, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append([]string{"REGISTRY_TEST_RUN_MAIN=1", "GOCOVERDIR=" + t.TempDir()}, env...)
	return cmd
}

func TestMissingConfigurationExitsWithStatus2(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"nothing set", nil, "registry: CHAINCODE_ID: must be set\n"},
		{"no key file", []string{"CHAINCODE_ID=cc:1", "CHAINCODE_SERVER_ADDRESS=127.0.0.1:0",
			"CHAINCODE_TLS_CERT=" + filepath.Join(dir, "missing.crt"), "CHAINCODE_TLS_KEY=x", "CHAINCODE_TLS_CLIENT_CA=y"},
			"registry: CHAINCODE_TLS_CERT: cannot read " + filepath.Join(dir, "missing.crt") + ": no such file or directory\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := command(t, tc.env...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2", err)
			}
			if stderr.String() != tc.want {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.want)
			}
		})
	}
}

type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	kpem []byte
}

// issue makes a certificate signed by parent (self-signed when nil).
func issue(t *testing.T, name string, parent *keyPair, isCA bool) *keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  isCA,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	signer, signerKey := template, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return &keyPair{cert: cert, key: key,
		pem:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		kpem: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServerRequiresClientCertificates starts the server and checks that a
// TLS client with a certificate of the client CA gets in and one without
// any certificate does not.
func TestServerRequiresClientCertificates(t *testing.T) {
	dir := t.TempDir()
	peerCA := issue(t, "peer-ca", nil, true)
	server := issue(t, "registry", nil, false)
	client := issue(t, "peer0.org1", peerCA, false)
	address := freeAddress(t)
	cmd := command(t,
		"CHAINCODE_ID=registry_1.0:abc",
		"CHAINCODE_SERVER_ADDRESS="+address,
		"CHAINCODE_TLS_CERT="+writeFile(t, dir, "server.crt", server.pem),
		"CHAINCODE_TLS_KEY="+writeFile(t, dir, "server.key", server.kpem),
		"CHAINCODE_TLS_CLIENT_CA="+writeFile(t, dir, "ca.crt", peerCA.pem),
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if want := "registry: serving registry_1.0:abc on " + address + " (TLS, client certificates required)\n"; line != want {
		t.Errorf("start line %q, want %q", line, want)
	}

	dial := func(certs []tls.Certificate) error {
		var conn *tls.Conn
		var err error
		for i := 0; i < 50; i++ {
			conn, err = tls.Dial("tcp", address, &tls.Config{
				InsecureSkipVerify: true, // the server's certificate is not under test
				Certificates:       certs,
				NextProtos:         []string{"h2"},
			})
			if err == nil || !strings.Contains(err.Error(), "connection refused") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return err
		}
		defer conn.Close()
		// TLS 1.3 reports a refused client certificate on the first read.
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		var timeout net.Error
		if errors.As(err, &timeout) && timeout.Timeout() {
			return nil
		}
		return err
	}
	pair := tls.Certificate{Certificate: [][]byte{client.cert.Raw}, PrivateKey: client.key}
	if err := dial([]tls.Certificate{pair}); err != nil {
		t.Errorf("client with a certificate of the client CA: %v", err)
	}
	if err := dial(nil); err == nil {
		t.Error("client without a certificate was accepted")
	}
	stranger := issue(t, "stranger", nil, false)
	if err := dial([]tls.Certificate{{Certificate: [][]byte{stranger.cert.Raw}, PrivateKey: stranger.key}}); err == nil {
		t.Error("client with a certificate of another CA was accepted")
	}
}
