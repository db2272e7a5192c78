package events

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
)

// URLError says why a webhook URL is refused; its message is safe to show
// the client.
type URLError struct{ Reason string }

func (e *URLError) Error() string { return e.Reason }

// Ranges refused besides what netip classifies: "this network", shared
// address space (carrier NAT) and the IETF protocol assignments.
var extraRefused = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
}

// RefusedIP says why ip may not receive webhooks unless private targets
// are allowed, or "" when it may: loopback, private, link-local,
// unspecified and multicast addresses, IPv4 and IPv6, IPv4-mapped IPv6
// judged as the IPv4 address it carries.
func RefusedIP(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "not an IP address"
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsPrivate():
		return "a private address"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "a link-local address"
	case ip.IsUnspecified():
		return "an unspecified address"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return "a multicast address"
	}
	for _, p := range extraRefused {
		if p.Contains(ip) {
			return "a reserved address"
		}
	}
	return ""
}

// Resolver looks host names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckURL refuses a webhook URL that is not http(s), carries userinfo or
// has no host, and, unless allowPrivate, one whose host is or resolves to
// a refused address (RefusedIP). The error is a *URLError naming why.
// Delivery checks the address again at connect time (DialControl), since
// DNS may answer differently then.
func CheckURL(ctx context.Context, raw string, allowPrivate bool, r Resolver) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return &URLError{"url is not a valid URL"}
	case u.Scheme != "http" && u.Scheme != "https":
		return &URLError{fmt.Sprintf("url scheme must be http or https, got %q", u.Scheme)}
	case u.User != nil:
		return &URLError{"url must not carry a user name or password"}
	case u.Hostname() == "":
		return &URLError{"url has no host"}
	case len(raw) > 2048:
		return &URLError{"url is longer than 2048 characters"}
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		if r == nil {
			r = net.DefaultResolver
		}
		if ips, err = r.LookupNetIP(ctx, "ip", host); err != nil || len(ips) == 0 {
			return &URLError{fmt.Sprintf("url host %q does not resolve", host)}
		}
	}
	for _, ip := range ips {
		if why := RefusedIP(ip); why != "" {
			return &URLError{fmt.Sprintf("url host %q resolves to %s, %s; private targets are not allowed", host, ip, why)}
		}
	}
	return nil
}

// errRefusedTarget is the dial error for a refused address.
var errRefusedTarget = errors.New("webhook target refused")

// DialControl is a net.Dialer Control that refuses connections to refused
// addresses, after DNS resolution, so a name that resolved to a public
// address when the endpoint was created and to a private one now (DNS
// rebinding) is not reached.
func DialControl(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", errRefusedTarget, address)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %s is not an IP address", errRefusedTarget, host)
	}
	if why := RefusedIP(ip); why != "" {
		return fmt.Errorf("%w: %s is %s", errRefusedTarget, ip, why)
	}
	return nil
}
