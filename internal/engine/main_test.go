package engine_test

import (
	"testing"

	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func testMain(m *testing.M) {
	if crashChild() {
		return
	}
	pgtest.Main(m)
}
