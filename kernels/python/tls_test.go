package python_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPythonClientTLS runs the runtime with mutual TLS: the Python client
// connects with the files qlaunch run hands its command
// (QLAUNCH_TLS_CA, _CERT, _KEY), verifying the server's chain.
func TestPythonClientTLS(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	ca, cert, key := writeTestCerts(t, dir)
	script := `import qlaunch
with qlaunch.Client() as c:
    print("over tls:", c.submit(abs, -5).result(30), c._sock.version())
`
	flags := "--tls-ca=" + ca + " --tls-cert=" + cert + " --tls-key=" + key + " --tls-verify-clients "
	out := runPython(t, flags+filepath.Join(root, "configs", "local.toml"),
		[]string{"PYTHONPATH=" + filepath.Join(root, "python")}, "-c", script)
	if !strings.Contains(out, "over tls: 5 TLSv1.3") {
		t.Errorf("output:\n%s", out)
	}
}

// writeTestCerts writes a CA and a certificate it signs (for servers and
// clients, naming 127.0.0.1 and localhost) as PEM files.
func writeTestCerts(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "qlaunch test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER, 0o644), write("cert.pem", "CERTIFICATE", leafDER, 0o644),
		write("key.pem", "PRIVATE KEY", keyDER, 0o600)
}
