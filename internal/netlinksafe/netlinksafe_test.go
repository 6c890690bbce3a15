package netlinksafe

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestDump(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name      string
		errs      []error // what successive calls return
		wantCalls int
		wantErr   error
	}{
		{"first try", []error{nil}, 1, nil},
		{"interrupted then whole", []error{netlink.ErrDumpInterrupted, unix.EINTR, nil}, 3, nil},
		{"another error is not retried", []error{boom}, 1, boom},
		{"always interrupted", nil, DumpAttempts, netlink.ErrDumpInterrupted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			out, err := Dump(func() ([]int, error) {
				calls++
				if calls <= len(tc.errs) {
					if e := tc.errs[calls-1]; e != nil {
						return []int{-1}, e // partial data with the error
					}
					return []int{1, 2}, nil
				}
				return []int{-1}, netlink.ErrDumpInterrupted
			})
			if calls != tc.wantCalls || !errors.Is(err, tc.wantErr) {
				t.Fatalf("calls %d err %v; want %d, %v", calls, err, tc.wantCalls, tc.wantErr)
			}
			if err != nil && out != nil {
				t.Errorf("partial data returned with an error: %v", out)
			}
			if err == nil && fmt.Sprint(out) != "[1 2]" {
				t.Errorf("out %v", out)
			}
		})
	}
}

// TestPrivilegedInScratchNetns: the handle works in an empty namespace (only
// lo), what fn creates there never shows on the host, and the caller's
// namespace is unchanged.
func TestPrivilegedInScratchNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	before, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	err = InScratchNetns(func(h *netlink.Handle) error {
		links, err := h.LinkList()
		if err != nil {
			return err
		}
		if len(links) != 1 || links[0].Attrs().Name != "lo" {
			return fmt.Errorf("scratch namespace has %d links, want only lo", len(links))
		}
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "nlsafe0"}, PeerName: "nlsafe1"}
		return h.LinkAdd(v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName("nlsafe0"); err == nil {
		t.Fatal("a link made in the scratch namespace appeared in the caller's")
	}
	after, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if !before.Equal(after) {
		t.Error("the caller's network namespace changed")
	}
	want := errors.New("fn failed")
	if err := InScratchNetns(func(*netlink.Handle) error { return want }); !errors.Is(err, want) {
		t.Errorf("fn's error: got %v", err)
	}
}
