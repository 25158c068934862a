package smtpserver

import "crypto/tls"

// tlsVersion names a TLS version in the Received field.
func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS1.0"
	case tls.VersionTLS11:
		return "TLS1.1"
	case tls.VersionTLS12:
		return "TLS1.2"
	case tls.VersionTLS13:
		return "TLS1.3"
	}
	return "TLS"
}

func tlsCipher(id uint16) string { return tls.CipherSuiteName(id) }
