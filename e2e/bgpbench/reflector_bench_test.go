package bgpbench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkBGPReflector1000 is one route reflector with 1,000 clients in
// separate processes (issue 10 item 7): "ours" runs our speaker as the
// reflector in a helper process, "bird" runs BIRD 2. The clients are
// plain gobgp v3 servers, 100 per helper process, each on its own 127.20.x
// address, dialling the reflector and originating one /26.
//
// Each iteration starts a fresh reflector and waits until it answers
// (reflector-setup-s), then starts the client processes and measures
// converge-s: until the reflector has every session Established and
// exactly the clients' blocks, and every client has learned exactly the
// other 999 blocks. Then 10% of the clients withdraw their block and
// announce a new one; churn-s is until the reflector and every client
// have exactly the new set. rr-peakRSS-MiB is the reflector process's
// VmHWM, rr-cpu-s its CPU time over the whole iteration, clients-cpu-s
// the client processes' (they share the 2 cores with the reflector).
// BGPBENCH_CPUPROFILE=file profiles our reflector process.
//
// BGPBENCH_CLIENTS (default 1000) and BGPBENCH_PER_PROC (default 100)
// change the scale.
func BenchmarkBGPReflector1000(b *testing.B) {
	b.Run("ours", func(b *testing.B) { benchReflector(b, startOurReflector) })
	b.Run("bird", func(b *testing.B) { benchReflector(b, startBirdReflector) })
}

// reflector is the process under test.
type reflector interface {
	pid() int
	// churn tells the reflector what to expect from generation gen on.
	churn(gen int, churned []int) error
	// waitConverged waits until the reflector sees generation gen
	// exactly (every session Established, the blocks and their next hops).
	waitConverged(gen int, churned map[int]bool, deadline time.Time) error
	// stop ends it and returns a note for the log.
	stop() string
}

type ourReflector struct {
	h     *helperProc
	total int
}

func startOurReflector(b *testing.B, total int) reflector {
	h := startHelper(b, "reflector", helperEnv+"=reflector", totalEnv+"="+strconv.Itoa(total))
	if _, err := h.expect("ready", time.Now().Add(60*time.Second)); err != nil {
		b.Fatal(err)
	}
	return &ourReflector{h: h, total: total}
}

func (r *ourReflector) pid() int { return r.h.pid() }

func (r *ourReflector) churn(gen int, churned []int) error {
	return r.h.send(fmt.Sprintf("churn %d %s", gen, formatInts(churned)))
}

func (r *ourReflector) waitConverged(gen int, _ map[int]bool, deadline time.Time) error {
	_, err := r.h.expect(fmt.Sprintf("converged %d", gen), deadline)
	return err
}

func (r *ourReflector) stop() string { return strings.Join(r.h.quit(), "; ") }

type birdRun struct {
	*birdReflector
	total int
}

func startBirdReflector(b *testing.B, total int) reflector {
	return &birdRun{birdReflector: startBird(b, total), total: total}
}

func (r *birdRun) churn(int, []int) error { return nil }

// waitConverged polls birdc every 100 ms.
func (r *birdRun) waitConverged(_ int, churned map[int]bool, deadline time.Time) error {
	want := expected(r.total, churned)
	for {
		est, exact, err := r.state(want)
		if err == nil && exact && est == r.total {
			return nil
		}
		if time.Now().After(deadline) {
			sample := r.lastRoutes
			if len(sample) > 2000 {
				sample = sample[:2000]
			}
			return fmt.Errorf("bird: %d of %d sessions Established, routes exact: %v (%v); last routes:\n%s", est, r.total, exact, err, sample)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *birdRun) stop() string { return "" }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func benchReflector(b *testing.B, start func(*testing.B, int) reflector) {
	total := envInt("BGPBENCH_CLIENTS", 1000)
	perProc := envInt("BGPBENCH_PER_PROC", 100)
	raiseNoFile(b, uint64(total+perProc+1024))
	var setupS, convS, churnS, peakMiB, cpuS, clientsReadyS, clientsCPUS float64
	for range b.N {
		t0 := time.Now()
		rr := start(b, total)
		setup := time.Since(t0)

		// The clients, all processes at once.
		t1 := time.Now()
		var procs []*helperProc
		for first := 0; first < total; first += perProc {
			n := min(perProc, total-first)
			procs = append(procs, startHelper(b, fmt.Sprintf("clients-%d", first), helperEnv+"=clients",
				totalEnv+"="+strconv.Itoa(total), firstEnv+"="+strconv.Itoa(first), countEnv+"="+strconv.Itoa(n)))
		}
		deadline := t1.Add(300 * time.Second)
		var readyMax time.Duration
		for _, p := range procs {
			if _, err := p.expect("ready", deadline); err != nil {
				b.Fatal(err)
			}
			readyMax = max(readyMax, time.Since(t1))
		}
		waitAll := func(gen int, churned map[int]bool, deadline time.Time) {
			b.Helper()
			errs := make(chan error, len(procs)+1)
			go func() { errs <- rr.waitConverged(gen, churned, deadline) }()
			for _, p := range procs {
				go func() { _, err := p.expect(fmt.Sprintf("converged %d", gen), deadline); errs <- err }()
			}
			for range len(procs) + 1 {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
		}
		waitAll(0, nil, deadline)
		conv := time.Since(t1)

		// Churn: every tenth client moves to its second block.
		churned := churnSet(total)
		set := map[int]bool{}
		for _, i := range churned {
			set[i] = true
		}
		cmd := fmt.Sprintf("churn 1 %s", formatInts(churned))
		t2 := time.Now()
		if err := rr.churn(1, churned); err != nil {
			b.Fatal(err)
		}
		for _, p := range procs {
			if err := p.send(cmd); err != nil {
				b.Fatal(err)
			}
		}
		waitAll(1, set, t2.Add(120*time.Second))
		churnD := time.Since(t2)

		st := procStatusKiB(rr.pid())
		cpu := cpuSeconds(rr.pid())
		var clientsCPU float64
		for _, p := range procs {
			clientsCPU += cpuSeconds(p.pid())
		}
		note := rr.stop()
		for _, p := range procs {
			p.quit()
		}
		b.Logf("reflector setup %.2fs, clients ready %.2fs, converged %.2fs, churn %.2fs, peak RSS %.0f MiB (RSS now %.0f MiB), CPU %.2fs, clients' CPU %.2fs %s",
			setup.Seconds(), readyMax.Seconds(), conv.Seconds(), churnD.Seconds(), st["VmHWM"]/1024, st["VmRSS"]/1024, cpu, clientsCPU, note)
		setupS += setup.Seconds()
		clientsReadyS += readyMax.Seconds()
		convS += conv.Seconds()
		churnS += churnD.Seconds()
		peakMiB = max(peakMiB, st["VmHWM"]/1024)
		cpuS += cpu
		clientsCPUS += clientsCPU
	}
	n := float64(b.N)
	b.ReportMetric(setupS/n, "reflector-setup-s")
	b.ReportMetric(clientsReadyS/n, "clients-ready-s")
	b.ReportMetric(convS/n, "converge-s")
	b.ReportMetric(churnS/n, "churn-s")
	b.ReportMetric(peakMiB, "rr-peakRSS-MiB")
	b.ReportMetric(cpuS/n, "rr-cpu-s")
	b.ReportMetric(clientsCPUS/n, "clients-cpu-s")
}
