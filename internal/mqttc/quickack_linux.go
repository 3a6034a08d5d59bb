package mqttc

import (
	"crypto/tls"
	"net"
	"syscall"
)

// quickAcker returns a function that makes the kernel acknowledge at once
// what nc has received (TCP_QUICKACK), or nil when nc is not TCP. See
// session.read for why.
func quickAcker(nc net.Conn) func() {
	if t, ok := nc.(*tls.Conn); ok {
		nc = t.NetConn()
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	set := func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1) }
	return func() { _ = rc.Control(set) }
}
