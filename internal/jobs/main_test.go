package jobs_test

import (
	"testing"

	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
