package speaker

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// gobgp's StopBgp and DeletePeer send a Cease NOTIFICATION, after which
// peers flush our routes. To leave as a graceful-restart speaker that
// died, the speaker first shuts down its own BGP sockets: it finds them by
// matching the inodes of this process's socket descriptors
// (/proc/self/fd) against the kernel's TCP tables (/proc/net/tcp, tcp6)
// and calls shutdown(2) on them (shutdown, not close: the descriptors stay
// owned by the Go runtime, so none can be reused under it). The peers see
// the TCP connection end without a NOTIFICATION.

// tcpSocket is one row of /proc/net/tcp{,6}.
type tcpSocket struct {
	local, remote netip.AddrPort
	listening     bool
	inode         uint64
}

// socketMatch says which of our sockets belong to the BGP server.
type socketMatch struct {
	listenPort int
	// peers are the remote ends of dialled sessions.
	peers map[netip.AddrPort]bool
}

func (m socketMatch) matches(s tcpSocket) bool {
	if m.listenPort > 0 && int(s.local.Port()) == m.listenPort {
		return true
	}
	return !s.listening && m.peers[netip.AddrPortFrom(s.remote.Addr().Unmap(), s.remote.Port())]
}

// shutdownBGPSockets shuts down every socket of this process that m
// matches and returns how many it shut down.
func shutdownBGPSockets(m socketMatch) (int, error) {
	socks := map[uint64]tcpSocket{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return 0, fmt.Errorf("read TCP table: %w", err)
		}
		rows, err := parseTCPTable(fh)
		fh.Close()
		if err != nil {
			return 0, fmt.Errorf("parse %s: %w", f, err)
		}
		for _, r := range rows {
			socks[r.inode] = r
		}
	}
	fds, err := socketFDs()
	if err != nil {
		return 0, err
	}
	// Listeners first, so no new connection is accepted meanwhile.
	n := 0
	var errs []error
	for _, listening := range []bool{true, false} {
		for fd, inode := range fds {
			s, ok := socks[inode]
			if !ok || s.listening != listening || !m.matches(s) {
				continue
			}
			// The descriptor may have been closed and reused since it was
			// listed: check it still is the same socket.
			if again, err := fdInode(fd); err != nil || again != inode {
				continue
			}
			if err := unix.Shutdown(fd, unix.SHUT_RDWR); err != nil && !errors.Is(err, unix.ENOTCONN) {
				errs = append(errs, fmt.Errorf("shutdown fd %d (%s -> %s): %w", fd, s.local, s.remote, err))
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}

// socketFDs maps this process's socket descriptors to their inodes.
func socketFDs() (map[int]uint64, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("list descriptors: %w", err)
	}
	out := map[int]uint64{}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if inode, err := fdInode(fd); err == nil {
			out[fd] = inode
		}
	}
	return out, nil
}

func fdInode(fd int) (uint64, error) {
	link, err := os.Readlink(filepath.Join("/proc/self/fd", strconv.Itoa(fd)))
	if err != nil {
		return 0, err
	}
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, fmt.Errorf("fd %d is not a socket", fd)
	}
	return strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
}

// parseTCPTable reads /proc/net/tcp or tcp6.
func parseTCPTable(r io.Reader) ([]tcpSocket, error) {
	var out []tcpSocket
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue // header
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		local, err := parseHexAddrPort(f[1])
		if err != nil {
			return nil, err
		}
		remote, err := parseHexAddrPort(f[2])
		if err != nil {
			return nil, err
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("inode %q: %w", f[9], err)
		}
		out = append(out, tcpSocket{local: local, remote: remote, listening: f[3] == "0A", inode: inode})
	}
	return out, sc.Err()
}

// parseHexAddrPort parses the kernel's "0100007F:0050": the address as
// 32-bit words in host byte order, the port big-endian hex.
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("address %q: no port", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q: bad hex", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", s, err)
	}
	// Each 32-bit word is in host (little-endian on the platforms we
	// build for) order.
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(b[i:], binary.NativeEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}
