package circuits_test

import "context"

func contextBackground() context.Context { return context.Background() }
