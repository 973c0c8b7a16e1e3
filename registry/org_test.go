package registry_test

import (
	"errors"
	"testing"

	"github.com/healthgw/healthgw/registry"
)

func TestValidateKeyCheck(t *testing.T) {
	o := registry.Org{ID: "hosp-a", Name: "Hospital A", Kind: registry.KindHospital, JWKS: `{"keys":[{}]}`}
	bad := errors.New("no usable key")
	for _, tt := range []struct {
		name string
		keys registry.KeyCheck
		want error // nil: valid
	}{
		{"the check accepts", func([]byte) error { return nil }, nil},
		{"the check refuses", func([]byte) error { return bad }, bad},
		{"no check", nil, registry.ErrInvalidOrg},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := o.Validate(tt.keys)
			if tt.want == nil && err != nil || tt.want != nil && (!errors.Is(err, tt.want) || !errors.Is(err, registry.ErrInvalidOrg)) {
				t.Errorf("Validate = %v, want %v (and ErrInvalidOrg)", err, tt.want)
			}
		})
	}
	// A JWKS URL needs no key check of an inline set, but still a check.
	u := registry.Org{ID: "reg-1", Name: "Regulator", Kind: registry.KindRegulator, JWKSURL: "https://reg.example/jwks.json"}
	if err := u.Validate(func([]byte) error { return bad }); err != nil {
		t.Errorf("JWKS URL org: %v", err)
	}
}
