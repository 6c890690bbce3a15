package etcdserver

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.uber.org/zap/zapcore"
)

// expectedWarnings are messages etcd logs at warn level for choices we made
// on purpose for an embedded single member; they are demoted to debug.
var expectedWarnings = map[string]bool{
	"Running http and grpc server on single port. This is not recommended for production.": true,
	"simple token is not cryptographically signed":                                         true,
}

// slogCore is a zapcore.Core that forwards etcd's zap records at or above a
// minimum level to a slog.Logger, so the embedded server logs through the
// same handler as the rest of the program. Once closing is set, the errors
// etcd reports about its own listeners shutting down are demoted to debug.
type slogCore struct {
	logger  *slog.Logger
	min     zapcore.Level
	attrs   []any
	closing *atomic.Bool
}

func newSlogCore(l *slog.Logger, min zapcore.Level, closing *atomic.Bool) zapcore.Core {
	if closing == nil {
		closing = new(atomic.Bool)
	}
	return &slogCore{logger: l.With("component", "etcd"), min: min, closing: closing}
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return l >= c.min && c.logger.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	clone := *c
	clone.attrs = append(append([]any(nil), c.attrs...), fieldAttrs(fields)...)
	return &clone
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	args := append(append([]any(nil), c.attrs...), fieldAttrs(fields)...)
	if e.LoggerName != "" {
		args = append(args, slog.String("logger", e.LoggerName))
	}
	level := slogLevel(e.Level)
	if c.closing.Load() || expectedWarnings[e.Message] {
		level = slog.LevelDebug
	}
	c.logger.Log(context.Background(), level, e.Message, args...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l >= zapcore.ErrorLevel:
		return slog.LevelError
	case l >= zapcore.WarnLevel:
		return slog.LevelWarn
	case l >= zapcore.InfoLevel:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// fieldAttrs renders zap fields through zap's own map encoder, which knows
// every field type, and turns the result into slog attributes.
func fieldAttrs(fields []zapcore.Field) []any {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	out := make([]any, 0, len(enc.Fields))
	for k, v := range enc.Fields {
		out = append(out, slog.Any(k, v))
	}
	return out
}
