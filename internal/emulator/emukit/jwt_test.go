package emukit_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
)

func newKey(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	return key, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func sign(t *testing.T, key *ecdsa.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func TestParseES256(t *testing.T) {
	t.Parallel()
	key, pubPEM := newKey(t)
	pub, err := emukit.ParsePublicKeyPEM(pubPEM)
	require.NoError(t, err)
	keyFor := func(kid string) (*ecdsa.PublicKey, error) {
		if kid != "KEY1" {
			return nil, errors.New("unknown key")
		}
		return pub, nil
	}
	iat := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	t.Run("valid token", func(t *testing.T) {
		t.Parallel()
		tok := sign(t, key, "KEY1", jwt.MapClaims{"iss": "team", "aud": "appstoreconnect-v1", "iat": iat.Unix(), "exp": iat.Add(20 * time.Minute).Unix()})
		header, claims, err := emukit.ParseES256(tok, keyFor)
		require.NoError(t, err)
		require.Equal(t, "KEY1", header["kid"])
		require.Equal(t, "team", claims["iss"])
		got, ok := emukit.ClaimTime(claims, "exp")
		require.True(t, ok)
		require.Equal(t, iat.Add(20*time.Minute), got)
		_, ok = emukit.ClaimTime(claims, "nbf")
		require.False(t, ok)
	})

	t.Run("expired token still parses: time checks are the caller's", func(t *testing.T) {
		t.Parallel()
		tok := sign(t, key, "KEY1", jwt.MapClaims{"exp": 1})
		_, _, err := emukit.ParseES256(tok, keyFor)
		require.NoError(t, err)
	})

	t.Run("unknown kid", func(t *testing.T) {
		t.Parallel()
		_, _, err := emukit.ParseES256(sign(t, key, "OTHER", jwt.MapClaims{}), keyFor)
		require.ErrorContains(t, err, "unknown key")
	})

	t.Run("another key's signature", func(t *testing.T) {
		t.Parallel()
		other, _ := newKey(t)
		_, _, err := emukit.ParseES256(sign(t, other, "KEY1", jwt.MapClaims{}), keyFor)
		require.Error(t, err)
	})

	t.Run("DER signature is refused", func(t *testing.T) {
		t.Parallel()
		tok := sign(t, key, "KEY1", jwt.MapClaims{"iss": "team"})
		parts := strings.Split(tok, ".")
		digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
		require.NoError(t, err)
		der, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
		require.NoError(t, err)
		_, _, err = emukit.ParseES256(parts[0]+"."+parts[1]+"."+base64.RawURLEncoding.EncodeToString(der), keyFor)
		require.Error(t, err)
	})

	t.Run("other algorithms are refused", func(t *testing.T) {
		t.Parallel()
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{})
		tok.Header["kid"] = "KEY1"
		s, err := tok.SignedString([]byte("secret"))
		require.NoError(t, err)
		_, _, err = emukit.ParseES256(s, keyFor)
		require.Error(t, err)
	})

	t.Run("missing kid and garbage", func(t *testing.T) {
		t.Parallel()
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{})
		s, err := tok.SignedString(key)
		require.NoError(t, err)
		_, _, err = emukit.ParseES256(s, keyFor)
		require.ErrorContains(t, err, "no kid")
		_, _, err = emukit.ParseES256("a.b", keyFor)
		require.Error(t, err)
	})
}

func TestParsePublicKeyPEM(t *testing.T) {
	t.Parallel()
	_, err := emukit.ParsePublicKeyPEM([]byte("nope"))
	require.Error(t, err)
	key, _ := newKey(t)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	_, err = emukit.ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	require.ErrorContains(t, err, "PUBLIC KEY")
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	der, err = x509.MarshalPKIXPublicKey(&p384.PublicKey)
	require.NoError(t, err)
	_, err = emukit.ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	require.ErrorContains(t, err, "P-256")
}
