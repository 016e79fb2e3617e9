// The official Gateway API conformance suite, run against RAUTA by hack/conformance/run.ts
// (`npm run conformance`), which passes the suite's flags and reads the report it writes.
package conformance

import (
	"testing"

	"sigs.k8s.io/gateway-api/conformance"
)

func TestConformance(t *testing.T) {
	conformance.RunConformance(t)
}
