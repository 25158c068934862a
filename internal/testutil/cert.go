package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// CertOptions say what a test certificate is valid for.
type CertOptions struct {
	// Names are the subject alternative names: a name that parses as an
	// IP address goes into IPAddresses, any other into DNSNames. The first
	// one is also the subject's CommonName. Default: "localhost" and
	// "127.0.0.1".
	Names []string
	// IPsAsDNSNames also lists every IP address of Names as a DNS name,
	// for clients that match the host they connect to against DNS names
	// only (fetchmail). Default false.
	IPsAsDNSNames bool
}

// Cert is a self-signed certificate with its key, usable both as a
// server certificate and as the only trust anchor a client needs.
type Cert struct {
	// Certificate is the certificate and key for a tls.Config, with Leaf
	// set.
	Certificate tls.Certificate
	// Pool trusts exactly this certificate.
	Pool *x509.CertPool
	// CertPEM and KeyPEM are the PEM encodings ("CERTIFICATE" and
	// "EC PRIVATE KEY").
	CertPEM, KeyPEM []byte
}

// NewCert makes a fresh self-signed ECDSA P-256 certificate valid from an
// hour ago for a day. It is a CA certificate (basic constraints, key usage
// CertSign) as well as a TLS server one, so that OpenSSL-based clients
// (Python, fetchmail, mbsync) given its PEM file as their CA accept it.
func NewCert(t testing.TB, opts CertOptions) *Cert {
	t.Helper()
	names := opts.Names
	if len(names) == 0 {
		names = []string{"localhost", "127.0.0.1"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: names[0]},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, n := range names {
		ip := net.ParseIP(n)
		if ip == nil {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
			continue
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		if opts.IPsAsDNSNames {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &Cert{
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		Pool:        pool,
		CertPEM:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:      pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}
}

// ServerConfig returns a new server tls.Config presenting c.
func (c *Cert) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.Certificate}}
}

// ClientConfig returns a new client tls.Config that trusts only c and
// verifies the server as serverName.
func (c *Cert) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{RootCAs: c.Pool, ServerName: serverName}
}

// WriteFiles writes cert.pem and key.pem (mode 0600) into a fresh
// t.TempDir() and returns their paths, for servers that load files and
// for external clients that take a CA file.
func (c *Cert) WriteFiles(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, c.CertPEM, 0o600))
	require.NoError(t, os.WriteFile(keyFile, c.KeyPEM, 0o600))
	return certFile, keyFile
}
