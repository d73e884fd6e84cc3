package mua

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// checkFingerprint normalises a SHA-256 certificate fingerprint: 64 hex
// digits, optionally in colon-separated pairs (as openssl prints it), with
// an optional "sha256:" prefix.
func checkFingerprint(fp *string) error {
	if *fp == "" {
		return nil
	}
	s := strings.ToLower(strings.TrimSpace(*fp))
	s = strings.TrimPrefix(s, "sha256:")
	s = strings.TrimPrefix(s, "sha256 fingerprint=")
	s = strings.ReplaceAll(s, ":", "")
	if b, err := hex.DecodeString(s); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("tls_fingerprint %q is not 64 hex digits (a SHA-256)", *fp)
	}
	*fp = s
	return nil
}

// CertFingerprint returns the hex SHA-256 of the first certificate of a
// PEM file, as tls_fingerprint wants it.
func CertFingerprint(pemFile string) (string, error) {
	b, err := os.ReadFile(pemFile)
	if err != nil {
		return "", err
	}
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return "", fmt.Errorf("%s: no PEM certificate", pemFile)
		}
		if blk.Type == "CERTIFICATE" {
			sum := sha256.Sum256(blk.Bytes)
			return hex.EncodeToString(sum[:]), nil
		}
	}
}

// tlsConfig is the client TLS configuration for s: the server's settings
// override the profile's. By default the certificate is verified against
// the system roots and the host name; tls_ca_file replaces the roots,
// tls_server_name the name, and tls_fingerprint pins one certificate
// instead of both checks.
func (p *Profile) tlsConfig(s Server) (*tls.Config, error) {
	ca, fp, name := p.TLSCAFile, p.TLSFingerprint, p.TLSServerName
	if s.TLSCAFile != "" {
		ca = s.TLSCAFile
	}
	if s.TLSFingerprint != "" {
		fp = s.TLSFingerprint
	}
	if s.TLSServerName != "" {
		name = s.TLSServerName
	}
	if name == "" {
		name = s.Host
	}
	conf := &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12}
	if ca != "" {
		b, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("tls_ca_file %s: no PEM certificate in it", ca)
		}
		conf.RootCAs = pool
	}
	if fp != "" {
		want, _ := hex.DecodeString(fp)
		// The pin replaces chain and name checks: the server must present
		// exactly this certificate.
		conf.InsecureSkipVerify = true
		conf.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: server sent no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				return fmt.Errorf("tls: server certificate has SHA-256 %x, not the configured tls_fingerprint", got)
			}
			return nil
		}
	}
	return conf, nil
}
