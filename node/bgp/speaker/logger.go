package speaker

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// logAdapter feeds gobgp's logger interface into slog and remembers, per
// peer, the last reason a session went down or a dial failed: gobgp's API
// has no "last error" of a peer, and upstream's INFO column shows one.
//
// It reports Debug to gobgp (so the "failed to connect" lines are made)
// and filters by level itself. Fatal and Panic are logged as errors and do
// not exit: gobgp calls them on paths an embedded server survives.
type logAdapter struct {
	log *slog.Logger

	mu      sync.Mutex
	lastErr map[string]string // peer address -> last error
	changed func()
}

var _ gobgplog.Logger = (*logAdapter)(nil)

func newLogAdapter(l *slog.Logger, changed func()) *logAdapter {
	return &logAdapter{log: l, lastErr: map[string]string{}, changed: changed}
}

func (a *logAdapter) emit(level slog.Level, msg string, fields gobgplog.Fields) {
	a.record(msg, fields)
	ctx := context.Background()
	if !a.log.Enabled(ctx, level) {
		return
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]any, 0, 2*len(keys)+2)
	attrs = append(attrs, "component", "gobgp")
	for _, k := range keys {
		attrs = append(attrs, k, fields[k])
	}
	a.log.Log(ctx, level, msg, attrs...)
}

// record keeps the reasons of "Peer Down" and "failed to connect", and
// forgets them when the session comes up.
func (a *logAdapter) record(msg string, fields gobgplog.Fields) {
	key, _ := fields["Key"].(string)
	if key == "" {
		return
	}
	var reason string
	switch msg {
	case "Peer Down":
		reason = fmt.Sprint(fields["Reason"])
	case "failed to connect":
		reason = "Socket: " + fmt.Sprint(fields["Error"])
	case "Peer Up":
		a.mu.Lock()
		delete(a.lastErr, key)
		a.mu.Unlock()
		return
	default:
		return
	}
	a.mu.Lock()
	prev := a.lastErr[key]
	a.lastErr[key] = reason
	a.mu.Unlock()
	if prev != reason && a.changed != nil {
		a.changed()
	}
}

// LastError is the last recorded error of a peer ("" when none).
func (a *logAdapter) LastError(addr string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastErr[addr]
}

func (a *logAdapter) Panic(msg string, f gobgplog.Fields) { a.emit(slog.LevelError, msg, f) }
func (a *logAdapter) Fatal(msg string, f gobgplog.Fields) { a.emit(slog.LevelError, msg, f) }
func (a *logAdapter) Error(msg string, f gobgplog.Fields) { a.emit(slog.LevelError, msg, f) }
func (a *logAdapter) Warn(msg string, f gobgplog.Fields)  { a.emit(slog.LevelWarn, msg, f) }
func (a *logAdapter) Info(msg string, f gobgplog.Fields)  { a.emit(slog.LevelInfo, msg, f) }
func (a *logAdapter) Debug(msg string, f gobgplog.Fields) { a.emit(slog.LevelDebug, msg, f) }

// SetLevel is ignored: the slog handler decides what is printed.
func (a *logAdapter) SetLevel(gobgplog.LogLevel) {}

// GetLevel is Debug so that gobgp produces the messages record reads.
func (a *logAdapter) GetLevel() gobgplog.LogLevel { return gobgplog.DebugLevel }
