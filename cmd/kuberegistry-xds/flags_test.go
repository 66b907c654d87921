package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFlagDefaults(t *testing.T) {
	c, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case c.xdsListen != ":18000", c.httpListen != ":8080":
		t.Errorf("listen %q and %q, want :18000 and :8080", c.xdsListen, c.httpListen)
	case !c.pods || c.services || c.allNamespaces || c.namespaces != nil || c.selector != "":
		t.Errorf("scope %+v, want the registered pods of the default namespace", c)
	case c.maxStale != 2*time.Minute || c.shutdownTimeout != 10*time.Second:
		t.Errorf("max-stale %v, shutdown-timeout %v", c.maxStale, c.shutdownTimeout)
	case c.tls != nil || c.printBootstrap || c.verbosity != 0 || c.logFormat != "json":
		t.Errorf("%+v", c)
	}
}

func TestFlagsParse(t *testing.T) {
	c, err := parseFlags([]string{"--namespaces= shop, payments ,", "-selector=tier=backend,track!=canary",
		"-services", "-pods=false", "-xds-listen=127.0.0.1:0", "-http-listen=127.0.0.1:0", "-v=1", "-log-format=text"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.namespaces, []string{"shop", "payments"}) || c.pods || !c.services || c.verbosity != 1 {
		t.Fatalf("%+v", c)
	}
	c, err = parseFlags([]string{"-print-bootstrap", "-server-uri=dns:///a:18000, dns:///b:18000", "-node-id=n"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !c.printBootstrap || !slices.Equal(c.serverURIs, []string{"dns:///a:18000", "dns:///b:18000"}) || c.nodeID != "n" {
		t.Fatalf("%+v", c)
	}
}

func TestFlagsHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := parseFlags([]string{"-h"}, &out)
	if !errors.Is(err, errHelp) {
		t.Fatalf("err = %v, want errHelp", err)
	}
	for _, want := range []string{"Usage:", "-xds-listen", `(default ":18000")`, "-print-bootstrap", "/readyz"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h lacks %q:\n%s", want, out.String())
		}
	}
}

// Every mistake fails before any request, with a message naming the flag and the fix.
func TestFlagsRejectMistakes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bootstrap without a server", []string{"-print-bootstrap"}, "-print-bootstrap needs -server-uri"},
		{"server uri without a port", []string{"-print-bootstrap", "-server-uri=kuberegistry-xds"}, `-server-uri, -node-id, -bootstrap-tls or -bootstrap-ca: kuberegistry/xds: invalid option: server URI "kuberegistry-xds": give host:port`},
		{"bootstrap flag when serving", []string{"-bootstrap-ca=/etc/ca.pem"}, "-bootstrap-ca is for -print-bootstrap only"},
		{"server uri when serving", []string{"-server-uri=dns:///a:1"}, "-server-uri is for -print-bootstrap only"},
		{"node id when serving", []string{"-node-id=x"}, "-node-id is for -print-bootstrap only"},
		{"empty namespaces", []string{"-namespaces= , "}, "-namespaces is empty"},
		{"both scopes", []string{"-namespaces=shop", "-all-namespaces"}, "exclude each other"},
		{"bad namespace", []string{"-namespaces=Shop"}, `-namespaces: "Shop" is not a namespace name`},
		{"namespace twice", []string{"-namespaces=shop,shop"}, `"shop" is named twice`},
		{"bad selector", []string{"-selector=a in (b"}, "-selector"},
		{"nothing served", []string{"-pods=false"}, "serves nothing"},
		{"listen without a colon", []string{"-xds-listen=18000"}, "-xds-listen \"18000\": want host:port"},
		{"named port", []string{"-http-listen=:http"}, "-http-listen \":http\": the port must be a number"},
		{"same port", []string{"-xds-listen=:9000", "-http-listen=:9000"}, "give them different ports"},
		{"cert without key", []string{"-tls-cert=a.pem"}, "-tls-cert and -tls-key go together"},
		{"unreadable cert", []string{"-tls-cert=/nonexistent/a.pem", "-tls-key=/nonexistent/a.key"}, "-tls-cert \"/nonexistent/a.pem\""},
		{"zero max-stale", []string{"-max-stale=0"}, "-max-stale 0s: give a positive duration"},
		{"negative shutdown", []string{"-shutdown-timeout=-1s"}, "-shutdown-timeout -1s"},
		{"negative verbosity", []string{"-v=-1"}, "-v -1"},
		{"log format", []string{"-log-format=xml"}, `-log-format "xml": give json or text`},
		{"argument", []string{"serve"}, `unexpected argument "serve"`},
		{"unknown flag", []string{"-namespace=shop"}, "flag provided but not defined: -namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseFlags(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

// All problems are reported at once, so that one run shows every fix.
func TestFlagsReportEveryProblem(t *testing.T) {
	_, err := parseFlags([]string{"-pods=false", "-max-stale=0", "-log-format=xml"}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"serves nothing", "-max-stale", "-log-format"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
}

func TestFlagsLoadTLS(t *testing.T) {
	cert, key := writeCertificate(t)
	c, err := parseFlags([]string{"-tls-cert=" + cert, "-tls-key=" + key}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.tls == nil || len(c.tls.Certificate) != 1 {
		t.Fatalf("certificate not loaded: %+v", c.tls)
	}
	// A key that does not match the certificate is caught before serving.
	_, otherKey := writeCertificate(t)
	if _, err := parseFlags([]string{"-tls-cert=" + cert, "-tls-key=" + otherKey}, &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "private key does not match public key") {
		t.Fatalf("mismatched key: %v", err)
	}
}

// writeCertificate writes a self-signed certificate and its key for localhost, and returns their paths.
func writeCertificate(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kuberegistry-xds"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
