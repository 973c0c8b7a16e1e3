package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// prefixList is the value of --trusted-proxy: CIDRs or single addresses,
// comma-separated, repeatable.
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Set adds the comma-separated CIDRs (or addresses: /32, /128) of v.
func (l *prefixList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := parseProxyPrefix(f)
		if err != nil {
			return err
		}
		*l = append(*l, p)
	}
	return nil
}

func parseProxyPrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an IP address", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8 or fd00::/8)", s)
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, errors.New(s + " trusts every address: any client could then choose its own address with X-Forwarded-For; name the proxies' own addresses or network")
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}
