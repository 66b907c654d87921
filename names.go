package kuberegistry

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation"
)

// maxLabelValueLength is the longest label value Kubernetes accepts.
const maxLabelValueLength = validation.LabelValueMaxLength

// labelSafe returns v when it is a valid label value; otherwise a valid label value derived from
// it: its label-safe characters, cut short, and a hash of the whole value, so that different
// values stay different. The exact value then goes into an annotation.
func labelSafe(v string) (label string, exact bool) {
	if len(validation.IsValidLabelValue(v)) == 0 {
		return v, true
	}
	sum := sha256.Sum256([]byte(v))
	suffix := hex.EncodeToString(sum[:5])
	b := make([]byte, 0, maxLabelValueLength)
	for i := 0; i < len(v) && len(b) < maxLabelValueLength-len(suffix)-1; i++ {
		c := v[i]
		if isAlphanumeric(c) || c == '-' || c == '_' || c == '.' {
			b = append(b, c)
		} else {
			b = append(b, '_')
		}
	}
	// A label value must begin and end with an alphanumeric character.
	for len(b) > 0 && !isAlphanumeric(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && !isAlphanumeric(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return suffix, false
	}
	return string(b) + "-" + suffix, false
}

func isAlphanumeric(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// serviceNameRule says what a service name may be, for error messages.
const serviceNameRule = "a service name is a Kubernetes label value: at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit"

// serviceNameProblem says what is wrong with a service name, or "" when it is valid.
func serviceNameProblem(name string) string {
	switch {
	case name == "":
		return "it is empty"
	case len(name) > maxLabelValueLength:
		return fmt.Sprintf("it is %d characters long", len(name))
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlphanumeric(c) && c != '-' && c != '_' && c != '.' {
			return fmt.Sprintf("it holds %q", rune(c))
		}
	}
	if !isAlphanumeric(name[0]) || !isAlphanumeric(name[len(name)-1]) {
		return "it begins or ends with a symbol"
	}
	return ""
}

// validServiceName checks a service name given to GetService or Watch.
func validServiceName(name string) error {
	if p := serviceNameProblem(name); p != "" {
		return fmt.Errorf("%w %q: %s; %s", ErrInvalidName, name, p, serviceNameRule)
	}
	return nil
}
