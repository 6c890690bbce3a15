package bgpbench

// The helper processes. The benchmark re-executes its own test binary
// with BGPBENCH_HELPER set:
//
//	clients    BGPBENCH_FIRST..+BGPBENCH_COUNT of BGPBENCH_TOTAL reflector
//	           clients, each a plain gobgp v3 server on clientAddr(i) that
//	           dials the reflector and originates block(i).
//	reflector  our speaker (node/bgp/speaker) as the reflector of
//	           BGPBENCH_TOTAL clients, its intent from bgp.Compute.
//
// Both talk lines on stdin/stdout. They print "ready <ms>" once set up
// (the ms it took), then "converged <gen>" whenever everything they see
// matches generation gen: generation 0 is every client's first block;
// "churn <gen> <i,j,...>" on stdin moves those clients to their second
// block (the clients helper withdraws and announces; everyone updates
// what they expect). "quit" (or EOF) ends the helper.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/opencalico/calicoctl/node/bgp/speaker"
)

const (
	helperEnv = "BGPBENCH_HELPER"
	firstEnv  = "BGPBENCH_FIRST"
	countEnv  = "BGPBENCH_COUNT"
	totalEnv  = "BGPBENCH_TOTAL"
	// profileEnv names a file for a CPU profile (optional): the reflector
	// helper's whole run, or BenchmarkBGPMesh100's convergence.
	profileEnv = "BGPBENCH_CPUPROFILE"
)

func helperMain(mode string) int {
	if p := os.Getenv(profileEnv); p != "" && mode == "reflector" {
		f, err := os.Create(p)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	total, err := strconv.Atoi(os.Getenv(totalEnv))
	if err == nil {
		switch mode {
		case "clients":
			err = runClients(total)
		case "reflector":
			err = runReflector(total)
		default:
			err = fmt.Errorf("unknown helper mode %q", mode)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bgpbench helper:", err)
		return 1
	}
	return 0
}

// command is one stdin line: churn or quit.
type command struct {
	gen     int
	churned []int
	quit    bool
}

// readCommands turns stdin into commands; EOF is quit.
func readCommands(r io.Reader) <-chan command {
	ch := make(chan command)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "churn" {
				gen, err1 := strconv.Atoi(f[1])
				xs, err2 := parseInts(f[2])
				if err1 == nil && err2 == nil {
					ch <- command{gen: gen, churned: xs}
					continue
				}
			}
			if len(f) > 0 && f[0] == "quit" {
				break
			}
			fmt.Fprintf(os.Stderr, "bgpbench helper: bad command %q\n", sc.Text())
		}
		ch <- command{quit: true}
	}()
	return ch
}

// quietLogger drops gobgp's logs (the clients are scaffolding).
type quietLogger struct{}

var _ gobgplog.Logger = quietLogger{}

func (quietLogger) Panic(string, gobgplog.Fields)  {}
func (quietLogger) Fatal(string, gobgplog.Fields)  {}
func (quietLogger) Error(string, gobgplog.Fields)  {}
func (quietLogger) Warn(string, gobgplog.Fields)   {}
func (quietLogger) Info(string, gobgplog.Fields)   {}
func (quietLogger) Debug(string, gobgplog.Fields)  {}
func (quietLogger) SetLevel(gobgplog.LogLevel)     {}
func (quietLogger) GetLevel() gobgplog.LogLevel    { return gobgplog.ErrorLevel }
func (quietLogger) Fields() map[string]interface{} { return nil }

// client is one gobgp route-reflector client.
type client struct {
	i    int
	addr netip.Addr
	srv  *server.BgpServer
	uuid []byte
	// Guarded by clientGroup.mu:
	established bool
	learned     map[netip.Prefix]bool
}

// clientGroup is the clients of one helper process.
type clientGroup struct {
	total   int
	clients []*client
	dirty   chan struct{}

	mu      sync.Mutex
	churned map[int]bool
}

func (g *clientGroup) touch() {
	select {
	case g.dirty <- struct{}{}:
	default:
	}
}

func ipv4Unicast() *api.Family {
	return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
}

// originate announces pfx with next hop nh and returns the path's uuid.
func originate(ctx context.Context, srv *server.BgpServer, pfx netip.Prefix, nh netip.Addr) ([]byte, error) {
	nlri, _ := anypb.New(&api.IPAddressPrefix{Prefix: pfx.Addr().String(), PrefixLen: uint32(pfx.Bits())})
	origin, _ := anypb.New(&api.OriginAttribute{Origin: 0})
	next, _ := anypb.New(&api.NextHopAttribute{NextHop: nh.String()})
	resp, err := srv.AddPath(ctx, &api.AddPathRequest{Path: &api.Path{Family: ipv4Unicast(), Nlri: nlri, Pattrs: []*anypb.Any{origin, next}}})
	if err != nil {
		return nil, fmt.Errorf("originate %s: %w", pfx, err)
	}
	return resp.Uuid, nil
}

// start runs the client's server: no listener, one iBGP session dialled
// to the reflector from the client's address (the planner makes the
// client the dialling side, see TestReflectorDesired), its block, and a
// watch of its best paths and session state.
func (g *clientGroup) start(ctx context.Context, c *client) error {
	c.srv = server.NewBgpServer(server.LoggerOption(quietLogger{}))
	go c.srv.Serve()
	if err := c.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: asn, RouterId: c.addr.String(), ListenPort: -1}}); err != nil {
		return fmt.Errorf("client %d: start: %w", c.i, err)
	}
	err := c.srv.WatchEvent(ctx, &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_BEST, Init: true}}},
	}, func(ev *api.WatchEventResponse) { g.event(c, ev) })
	if err != nil {
		return fmt.Errorf("client %d: watch: %w", c.i, err)
	}
	if err := c.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: rrAddr.String(), PeerAsn: asn},
		Transport: &api.Transport{LocalAddress: c.addr.String(), RemotePort: rrPort},
		// The agent's session timers (node/bgp/speaker peers.go).
		Timers: &api.Timers{Config: &api.TimersConfig{ConnectRetry: 5, HoldTime: 240, KeepaliveInterval: 80,
			IdleHoldTimeAfterReset: 5}},
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: ipv4Unicast(), Enabled: true}}},
	}}); err != nil {
		return fmt.Errorf("client %d: add the reflector: %w", c.i, err)
	}
	uuid, err := originate(ctx, c.srv, block(c.i, false), c.addr)
	c.uuid = uuid
	return err
}

func (g *clientGroup) event(c *client, ev *api.WatchEventResponse) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p := ev.GetPeer(); p != nil && p.GetPeer() != nil {
		c.established = p.GetPeer().GetState().GetSessionState() == api.PeerState_ESTABLISHED
	}
	for _, p := range ev.GetTable().GetPaths() {
		if p.NeighborIp == "" || p.NeighborIp == "<nil>" {
			continue // our own block
		}
		var ipp api.IPAddressPrefix
		if err := p.Nlri.UnmarshalTo(&ipp); err != nil {
			continue
		}
		a, err := netip.ParseAddr(ipp.Prefix)
		if err != nil {
			continue
		}
		pfx := netip.PrefixFrom(a, int(ipp.PrefixLen))
		if p.IsWithdraw {
			delete(c.learned, pfx)
		} else {
			c.learned[pfx] = true
		}
	}
	g.touch()
}

// summary is a progress line for stderr: sessions up and the fewest
// paths any client has learned.
func (g *clientGroup) summary() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	est, least, who := 0, g.total, -1
	for _, c := range g.clients {
		if c.established {
			est++
		}
		if len(c.learned) < least {
			least, who = len(c.learned), c.i
		}
	}
	return fmt.Sprintf("%d of %d sessions Established; client %d has the fewest paths, %d", est, len(g.clients), who, least)
}

// converged reports whether every client is established and has learned
// exactly the other clients' current blocks.
func (g *clientGroup) converged() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	want := expected(g.total, g.churned)
	for _, c := range g.clients {
		if !c.established || len(c.learned) != g.total-1 {
			return false
		}
		for pfx := range c.learned {
			if i, ok := want[pfx]; !ok || i == c.i {
				return false
			}
		}
	}
	return true
}

func runClients(total int) error {
	first, err1 := strconv.Atoi(os.Getenv(firstEnv))
	count, err2 := strconv.Atoi(os.Getenv(countEnv))
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%s and %s must be integers", firstEnv, countEnv)
	}
	ctx := context.Background()
	began := time.Now()
	g := &clientGroup{total: total, dirty: make(chan struct{}, 1), churned: map[int]bool{}}
	byIndex := map[int]*client{}
	for i := first; i < first+count; i++ {
		c := &client{i: i, addr: clientAddr(i), learned: map[netip.Prefix]bool{}}
		g.clients = append(g.clients, c)
		byIndex[i] = c
	}
	for _, c := range g.clients {
		if err := g.start(ctx, c); err != nil {
			return err
		}
	}
	fmt.Printf("ready %d\n", time.Since(began).Milliseconds())
	defer func() {
		for _, c := range g.clients {
			_ = c.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		}
	}()

	cmds := readCommands(os.Stdin)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	gen, reported := 0, -1
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	for {
		select {
		case <-progress.C:
			if reported < gen {
				fmt.Fprintf(os.Stderr, "%.0fs: %s\n", time.Since(began).Seconds(), g.summary())
			}
		case cmd := <-cmds:
			if cmd.quit {
				return nil
			}
			g.mu.Lock()
			gen = cmd.gen
			for _, i := range cmd.churned {
				g.churned[i] = true
			}
			g.mu.Unlock()
			for _, i := range cmd.churned {
				c := byIndex[i]
				if c == nil {
					continue
				}
				if err := c.srv.DeletePath(ctx, &api.DeletePathRequest{Family: ipv4Unicast(), Uuid: c.uuid}); err != nil {
					return fmt.Errorf("client %d: withdraw: %w", i, err)
				}
				uuid, err := originate(ctx, c.srv, block(i, true), c.addr)
				if err != nil {
					return err
				}
				c.uuid = uuid
			}
			g.touch()
		case <-tick.C:
			select {
			case <-g.dirty:
			default:
				continue
			}
			if reported < gen && g.converged() {
				reported = gen
				fmt.Printf("converged %d\n", gen)
			}
		}
	}
}

// runReflector runs our speaker as the reflector and reports when it has
// every session Established and exactly the clients' current blocks.
// Learned is polled on the speaker's change notifications (at most every
// 50 ms); Status (gobgp's ListPeer with advertised counts, dear on a
// reflector) only once the paths are complete, and only for generation 0. Its last line before
// exiting is "status-ms <ms>", the time of one Status call.
func runReflector(total int) error {
	ctx := context.Background()
	began := time.Now()
	sp, err := speaker.New(speaker.Options{Logger: slog.New(slog.DiscardHandler), StateDir: os.TempDir() + "/bgpbench-rr-" + strconv.Itoa(os.Getpid())})
	if err != nil {
		return err
	}
	defer os.RemoveAll(os.TempDir() + "/bgpbench-rr-" + strconv.Itoa(os.Getpid()))
	d := reflectorDesired(total)
	if len(d.Peers) != total {
		return fmt.Errorf("the planner gave the reflector %d peers, want %d (warnings: %v)", len(d.Peers), total, d.Warnings)
	}
	if err := sp.Apply(ctx, d); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	fmt.Printf("ready %d\n", time.Since(began).Milliseconds())

	churned := map[int]bool{}
	cmds := readCommands(os.Stdin)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	gen, reported, dirty := 0, -1, true
	for {
		select {
		case cmd := <-cmds:
			if cmd.quit {
				t := time.Now()
				sp.Status()
				fmt.Printf("status-ms %d\n", time.Since(t).Milliseconds())
				return sp.Close()
			}
			gen = cmd.gen
			for _, i := range cmd.churned {
				churned[i] = true
			}
			dirty = true
		case <-sp.LearnedChanges():
			dirty = true
		case <-sp.StatusChanges():
			dirty = true
		case <-tick.C:
			if !dirty || reported >= gen {
				continue
			}
			dirty = false
			want := expected(total, churned)
			learned := sp.Learned()
			if len(learned) != len(want) {
				continue
			}
			ok := true
			for _, l := range learned {
				if i, found := want[l.Prefix]; !found || l.NextHop != clientAddr(i) {
					ok = false
					break
				}
			}
			if !ok {
				continue
			}
			if gen > 0 {
				// Sessions were all Established at generation 0 and every
				// client checks its own; Status is too dear to poll.
				reported = gen
				fmt.Printf("converged %d\n", gen)
				continue
			}
			est := 0
			for _, p := range sp.Status() {
				if p.State == "Established" {
					est++
				}
			}
			if est != total {
				dirty = true
				continue
			}
			reported = gen
			fmt.Printf("converged %d\n", gen)
		}
	}
}
