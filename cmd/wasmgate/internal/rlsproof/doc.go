// Package rlsproof holds only a test: it checks the plugin's hand-written
// encoding of the rate limit service's messages (package policy) against
// the generated types of go-control-plane, which the plugin's module must
// not depend on.
package rlsproof
