package main

import (
	"time"

	"github.com/healthgw/healthgw/internal/testscale"
)

// scaledTimeout is base scaled to the machine (internal/testscale).
func scaledTimeout(base time.Duration) time.Duration { return testscale.Timeout(base) }
