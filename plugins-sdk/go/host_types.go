package rauta

import "errors"

// Level is a log level of [Log].
type Level int32

// Log levels, as the `log` host function numbers them.
const (
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

// Alg is a signature algorithm of [VerifySignature].
type Alg int32

// Signature algorithms, as the `verify_signature` host function numbers them.
const (
	// HS256 is HMAC-SHA256; the key is the secret's bytes.
	HS256 Alg = 1
	// RS256 is RSASSA-PKCS1-v1_5 with SHA-256; the key is PEM or a JWK JSON object.
	RS256 Alg = 2
	// ES256 is ECDSA P-256 with SHA-256, the signature raw r‖s (64 bytes); the key is PEM or
	// a JWK JSON object.
	ES256 Alg = 3
)

// ErrKeyUnusable is the answer of [VerifySignature] for a key the host cannot use with the
// algorithm (unparsable, wrong type) or an unknown algorithm.
var ErrKeyUnusable = errors.New("rauta: verification key unusable for the algorithm")

// RateResult is the answer of [RateTake]: the tokens left (≥ 0) when the token was taken,
// else minus the seconds until the next token.
type RateResult float64

// Allowed reports whether a token was taken.
func (r RateResult) Allowed() bool { return r >= 0 }

// Remaining is the number of whole tokens left after an allowed take, 0 when denied.
func (r RateResult) Remaining() int {
	if r < 0 {
		return 0
	}
	return int(r)
}

// RetryAfter is the number of seconds until the next token when denied, 0 when allowed.
func (r RateResult) RetryAfter() float64 {
	if r >= 0 {
		return 0
	}
	return -float64(r)
}
