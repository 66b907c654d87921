package grpc

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// DefaultScheme is the target scheme a Builder serves unless WithScheme says otherwise.
const DefaultScheme = "kubernetes"

// ErrInvalidOption wraps every problem NewBuilder finds in its arguments.
var ErrInvalidOption = errors.New("kuberegistry/grpc: invalid option")

// Option configures a Builder made by NewBuilder.
type Option interface {
	apply(*options)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	scheme          string
	endpointSchemes []string
	errs            []error
}

// WithScheme sets the target scheme the Builder serves, for a process that already has a
// "kubernetes" resolver. Default: DefaultScheme, "kubernetes".
func WithScheme(scheme string) Option {
	return optionFunc(func(o *options) {
		if !validScheme(scheme) {
			o.errs = append(o.errs, fmt.Errorf("WithScheme(%q): a scheme is a letter followed by letters, digits, '+', '-' or '.'", scheme))
		}
		o.scheme = strings.ToLower(scheme)
	})
}

// WithEndpointSchemes sets which endpoints of an instance are dialed, in order of preference:
// each instance is reached through its endpoints of the first of these schemes it has. Use
// WithEndpointSchemes("grpcs") for a client with TLS credentials. Default: "grpc", then "grpcs".
func WithEndpointSchemes(schemes ...string) Option {
	return optionFunc(func(o *options) {
		if len(schemes) == 0 {
			o.errs = append(o.errs, errors.New("WithEndpointSchemes(): name at least one scheme, such as \"grpc\""))
		}
		var chosen []string
		for _, s := range schemes {
			if !validScheme(s) {
				o.errs = append(o.errs, fmt.Errorf("WithEndpointSchemes: %q is not a URL scheme", s))
			}
			if s = strings.ToLower(s); !slices.Contains(chosen, s) {
				chosen = append(chosen, s)
			}
		}
		o.endpointSchemes = chosen
	})
}

// validScheme reports whether s is a URL scheme as RFC 3986 defines it.
func validScheme(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !('0' <= c && c <= '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
