package launcher

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/qlaunch/qlaunch/launcher/wire"
)

// taskHandler is the slog.Handler behind a kernel's Logger: records at or
// above the level the client asked for are encoded and sent up the tree
// under the task's log id, tagged with this rank and host. Attribute values
// are formatted here, so anything printable can be logged.
type taskHandler struct {
	w      *worker
	t      *task
	attrs  []string
	prefix string // open groups, "a.b."
}

func (h *taskHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.t.logDepth != 0 && l >= slog.Level(h.t.logLevel)
}

func (h *taskHandler) Handle(_ context.Context, r slog.Record) error {
	rec := wire.LogRecord{
		Task:  h.t.logID,
		Time:  r.Time.UnixNano(),
		Level: int(r.Level),
		Rank:  h.w.cfg.Rank,
		Host:  h.w.cfg.Host,
		Msg:   r.Message,
		Attrs: append([]string(nil), h.attrs...),
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs = appendAttr(rec.Attrs, h.prefix, a)
		return true
	})
	h.w.lock()
	h.w.logOut = wire.AppendLog(h.w.logOut, &rec)
	h.w.wakeWriter()
	h.w.mu.Unlock()
	return nil
}

func appendAttr(dst []string, prefix string, a slog.Attr) []string {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			dst = appendAttr(dst, p, g)
		}
		return dst
	}
	if a.Key == "" {
		return dst
	}
	return append(dst, prefix+a.Key, fmt.Sprint(v.Any()))
}

func (h *taskHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append([]string(nil), h.attrs...)
	for _, a := range as {
		n.attrs = appendAttr(n.attrs, h.prefix, a)
	}
	return &n
}

func (h *taskHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.prefix = strings.Clone(h.prefix + name + ".")
	return &n
}
