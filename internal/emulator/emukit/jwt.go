package emukit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ParsePublicKeyPEM reads a P-256 public key from a PEM "PUBLIC KEY" block (SPKI), the
// form Apple's consoles take an uploaded key in and owlmetry stores in integration
// configs.
func ParsePublicKeyPEM(data []byte) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("want a PEM PUBLIC KEY block")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	ec, ok := key.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("want an EC P-256 public key")
	}
	return ec, nil
}

// ParseES256 checks a compact JWT the way Apple's endpoints do before looking at its
// claims: three base64url parts, header alg ES256, and a signature of exactly 64 bytes
// (r‖s; DER is refused) valid for the key keyFor returns for the header's kid. It
// returns the header and the claims. Time and audience claims are left to the caller,
// which checks them on the emulator clock with the vendor's own tolerances.
func ParseES256(token string, keyFor func(kid string) (*ecdsa.PublicKey, error)) (map[string]any, jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}), jwt.WithoutClaimsValidation())
	parsed, err := parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("header has no kid")
		}
		return keyFor(kid)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("verify ES256 token: %w", err)
	}
	return parsed.Header, claims, nil
}

// ClaimTime reads a NumericDate claim (seconds since the epoch, possibly fractional).
// It reports false when the claim is absent or not a finite number.
func ClaimTime(claims jwt.MapClaims, name string) (time.Time, bool) {
	v, ok := claims[name].(float64)
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return time.Time{}, false
	}
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}
