package jose

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// ParsePEM parses the first PEM block of data as a key for alg. Accepted
// blocks: "PUBLIC KEY" (PKIX), "RSA PUBLIC KEY" (PKCS #1), "CERTIFICATE"
// (its public key; the certificate itself is not validated), "PRIVATE KEY"
// (PKCS #8), "RSA PRIVATE KEY" (PKCS #1) and "EC PRIVATE KEY" (SEC 1).
// The key must suit alg and pass the checks of [NewKey].
func ParsePEM(alg Algorithm, data []byte) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block found", ErrMalformed)
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: PEM block type %q", ErrUnsupportedKey, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, block.Type, err)
	}
	return NewKey(alg, key)
}

// MarshalPEM returns the public key of k as a PKIX "PUBLIC KEY" PEM block.
// HMAC keys have no public half and give an error.
func (k *Key) MarshalPEM() ([]byte, error) {
	if k.pub == nil {
		return nil, fmt.Errorf("%w: an HMAC key has no public PEM form", ErrInvalidKey)
	}
	der, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// MarshalPrivatePEM returns the private key of k as a PKCS #8 "PRIVATE KEY"
// PEM block. It fails for public keys, HMAC keys and signers whose private
// half is not in memory. The result is a secret.
func (k *Key) MarshalPrivatePEM() ([]byte, error) {
	if k.signer == nil {
		return nil, fmt.Errorf("%w: no exportable private key", ErrInvalidKey)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.signer)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
