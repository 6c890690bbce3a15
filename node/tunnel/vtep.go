package tunnel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/opencalico/calicoctl/internal/netlinksafe"
	"github.com/opencalico/calicoctl/node/routes"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VTEPStats counts the kernel writes of the last VTEPSyncer.Apply.
type VTEPStats struct {
	Adopted, Added, Deleted int
	Pending                 int // entries whose device does not exist yet
	FullSync                bool
}

// Changes is the number of kernel writes.
func (s VTEPStats) Changes() int { return s.Added + s.Deleted }

// VTEPSyncer keeps the FDB and permanent neighbor entries of our VXLAN
// devices equal to the desired set. Every permanent entry on those devices
// is ours; entries the kernel learns itself are left alone.
type VTEPSyncer struct {
	mu    sync.Mutex
	nl    *netlink.Handle
	full  bool
	fdb   map[routes.FDBEntry]bool
	neigh map[routes.NeighEntry]bool
	stats VTEPStats
}

// NewVTEPSyncer returns a syncer; its first Apply reads the kernel's entries.
func (m *Manager) NewVTEPSyncer() *VTEPSyncer {
	return &VTEPSyncer{nl: m.nl, full: true, fdb: map[routes.FDBEntry]bool{}, neigh: map[routes.NeighEntry]bool{}}
}

// LastStats reports the last Apply's writes.
func (s *VTEPSyncer) LastStats() VTEPStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Resync makes the next Apply read the kernel's entries again.
func (s *VTEPSyncer) Resync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.full = true
}

// Apply converges the entries. The first call (and the first after Resync)
// adopts matching entries and deletes stale ones; later calls only write
// what changed since the previous call.
func (s *VTEPSyncer) Apply(fdb []routes.FDBEntry, neigh []routes.NeighEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = VTEPStats{}
	wantFDB := map[routes.FDBEntry]bool{}
	wantNeigh := map[routes.NeighEntry]bool{}
	devs := map[string]netlink.Link{}
	var errs []error
	link := func(name string) netlink.Link {
		if l, ok := devs[name]; ok {
			return l
		}
		l, err := s.nl.LinkByName(name)
		if err != nil {
			l = nil
		}
		devs[name] = l
		return l
	}
	for _, f := range fdb {
		wantFDB[normFDB(f)] = true
	}
	for _, n := range neigh {
		wantNeigh[normNeigh(n)] = true
	}
	if s.full {
		s.stats.FullSync = true
		for _, name := range []string{VXLANDevice, VXLANDevice6} {
			link(name)
		}
		for f := range wantFDB {
			link(f.Dev)
		}
		for n := range wantNeigh {
			link(n.Dev)
		}
		have, haveN, err := s.dump(devs)
		if err != nil {
			return err
		}
		s.fdb, s.neigh = have, haveN
	}
	for f := range s.fdb {
		if !wantFDB[f] {
			errs = append(errs, s.delFDB(f, link(f.Dev)))
		}
	}
	for n := range s.neigh {
		if !wantNeigh[n] {
			errs = append(errs, s.delNeigh(n, link(n.Dev)))
		}
	}
	for f := range wantFDB {
		if s.fdb[f] {
			if s.full {
				s.stats.Adopted++
			}
			continue
		}
		l := link(f.Dev)
		if l == nil {
			s.stats.Pending++
			continue
		}
		mac, _ := net.ParseMAC(f.MAC)
		err := s.nl.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_BRIDGE,
			Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT, IP: f.Dst.AsSlice(), HardwareAddr: mac})
		if err != nil {
			errs = append(errs, fmt.Errorf("fdb %s -> %s dev %s: %w", f.MAC, f.Dst, f.Dev, err))
			continue
		}
		s.fdb[f] = true
		s.stats.Added++
	}
	for n := range wantNeigh {
		if s.neigh[n] {
			if s.full {
				s.stats.Adopted++
			}
			continue
		}
		l := link(n.Dev)
		if l == nil {
			s.stats.Pending++
			continue
		}
		mac, _ := net.ParseMAC(n.MAC)
		err := s.nl.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: family(n.IP),
			State: netlink.NUD_PERMANENT, Type: unix.RTN_UNICAST, IP: n.IP.AsSlice(), HardwareAddr: mac})
		if err != nil {
			errs = append(errs, fmt.Errorf("neighbor %s -> %s dev %s: %w", n.IP, n.MAC, n.Dev, err))
			continue
		}
		s.neigh[n] = true
		s.stats.Added++
	}
	s.full = false
	return errors.Join(errs...)
}

func (s *VTEPSyncer) delFDB(f routes.FDBEntry, l netlink.Link) error {
	delete(s.fdb, f)
	if l == nil {
		return nil // device gone: so is the entry
	}
	mac, _ := net.ParseMAC(f.MAC)
	err := s.nl.NeighDel(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_BRIDGE,
		Flags: netlink.NTF_SELF, IP: f.Dst.AsSlice(), HardwareAddr: mac})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete fdb %s dev %s: %w", f.MAC, f.Dev, err)
	}
	s.stats.Deleted++
	return nil
}

func (s *VTEPSyncer) delNeigh(n routes.NeighEntry, l netlink.Link) error {
	delete(s.neigh, n)
	if l == nil {
		return nil
	}
	err := s.nl.NeighDel(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: family(n.IP), IP: n.IP.AsSlice()})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete neighbor %s dev %s: %w", n.IP, n.Dev, err)
	}
	s.stats.Deleted++
	return nil
}

// dump reads the permanent FDB and neighbor entries of the given devices.
func (s *VTEPSyncer) dump(devs map[string]netlink.Link) (map[routes.FDBEntry]bool, map[routes.NeighEntry]bool, error) {
	fdb := map[routes.FDBEntry]bool{}
	neigh := map[routes.NeighEntry]bool{}
	for name, l := range devs {
		if l == nil {
			continue
		}
		for _, fam := range []int{unix.AF_BRIDGE, unix.AF_INET, unix.AF_INET6} {
			list, err := netlinksafe.Dump(func() ([]netlink.Neigh, error) { return s.nl.NeighList(l.Attrs().Index, fam) })
			if err != nil {
				return nil, nil, fmt.Errorf("list neighbors of %s: %w", name, err)
			}
			for _, n := range list {
				if n.State&netlink.NUD_PERMANENT == 0 || n.LinkIndex != l.Attrs().Index {
					continue
				}
				ip, ok := netip.AddrFromSlice(n.IP)
				if !ok || len(n.HardwareAddr) != 6 {
					continue
				}
				if fam == unix.AF_BRIDGE {
					fdb[routes.FDBEntry{MAC: n.HardwareAddr.String(), Dst: ip.Unmap(), Dev: name}] = true
				} else {
					neigh[routes.NeighEntry{IP: ip.Unmap(), MAC: n.HardwareAddr.String(), Dev: name}] = true
				}
			}
		}
	}
	return fdb, neigh, nil
}

func normFDB(f routes.FDBEntry) routes.FDBEntry {
	if mac, err := net.ParseMAC(f.MAC); err == nil {
		f.MAC = mac.String()
	}
	f.Dst = f.Dst.Unmap()
	return f
}

func normNeigh(n routes.NeighEntry) routes.NeighEntry {
	if mac, err := net.ParseMAC(n.MAC); err == nil {
		n.MAC = mac.String()
	}
	n.IP = n.IP.Unmap()
	return n
}

func family(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}
