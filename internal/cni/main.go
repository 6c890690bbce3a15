package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/opencalico/calicoctl/datastore"
)

// Plugin names (argv[0] of the binary).
const (
	PluginCalico = "calico"
	PluginIPAM   = "calico-ipam"
)

// SupportedVersions are the CNI spec versions we accept in cniVersion.
// Results are built as 1.0.0 and converted down by the library.
var SupportedVersions = version.PluginSupports("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// Options are everything one invocation uses; nil fields get the real thing.
type Options struct {
	Plugin         string // PluginCalico or PluginIPAM
	Env            func(string) string
	Stdin          io.Reader
	Stdout, Stderr io.Writer

	// Dataplane wires interfaces (default: the Linux dataplane in the
	// process's network namespace).
	Dataplane Dataplane
	// FS reads the nodename and MTU files and the host name.
	FS FileSystem
	// MTUFile overrides DefaultMTUFile.
	MTUFile string
	// Datastore, when set, is used instead of connecting from the config
	// (it is not closed).
	Datastore datastore.Interface
	// Pods reads pods and namespaces; nil builds one from the config when a
	// Kubernetes API is configured.
	Pods PodSource
	// Logger, when set, replaces the logger built from log_level/log_file_path.
	Logger *slog.Logger
	Now    func() time.Time
}

// Main runs one CNI invocation as the named plugin and returns the exit code.
// stdout carries only the result (or error) JSON.
func Main(ctx context.Context, plugin string, env func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	return Run(ctx, Options{Plugin: plugin, Env: env, Stdin: stdin, Stdout: stdout, Stderr: stderr})
}

// Run is Main with every dependency injectable.
func Run(ctx context.Context, o Options) int {
	if o.Env == nil {
		o.Env = os.Getenv
	}
	if o.FS == nil {
		o.FS = osFS{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	stdin, err := io.ReadAll(o.Stdin)
	if err != nil {
		return writeError(o.Stdout, "", &types.Error{Code: types.ErrIOFailure, Msg: "reading network config from stdin", Details: err.Error()})
	}
	cniVersion, _ := (&version.ConfigDecoder{}).Decode(stdin)
	args, err := ParseArgs(o.Env)
	if err != nil {
		return writeError(o.Stdout, cniVersion, err)
	}
	if args.Command == CmdVersion {
		if err := SupportedVersions.Encode(o.Stdout); err != nil {
			return 1
		}
		return 0
	}
	if cniVersion == "" {
		cniVersion = "0.1.0" // a config without cniVersion is from the first spec
	}
	if !slices.Contains(SupportedVersions.SupportedVersions(), cniVersion) {
		return writeError(o.Stdout, cniVersion, &types.Error{Code: types.ErrIncompatibleCNIVersion,
			Msg: "incompatible CNI versions", Details: fmt.Sprintf("config is %q, plugin supports %v", cniVersion, SupportedVersions.SupportedVersions())})
	}
	conf, err := ParseConf(stdin)
	if err != nil {
		return writeError(o.Stdout, cniVersion, err)
	}
	log, closeLog := o.logger(conf)
	defer closeLog()
	log = log.With("plugin", o.Plugin, "command", args.Command, "containerID", args.ContainerID)
	if args.IsK8s() {
		log = log.With("pod", args.K8s.Namespace+"/"+args.K8s.Name)
	}
	p := &plugin{o: o, args: args, conf: conf, log: log, stdin: stdin}
	start := o.Now()
	res, err := p.run(ctx)
	p.close()
	if err != nil {
		log.Error("CNI command failed", "err", err, "took", o.Now().Sub(start))
		return writeError(o.Stdout, cniVersion, err)
	}
	log.Info("CNI command done", "took", o.Now().Sub(start))
	if res == nil {
		return 0
	}
	out, err := res.GetAsVersion(cniVersion)
	if err != nil {
		return writeError(o.Stdout, cniVersion, &types.Error{Code: types.ErrIncompatibleCNIVersion, Msg: "converting the result", Details: err.Error()})
	}
	if err := out.PrintTo(o.Stdout); err != nil {
		log.Error("writing result", "err", err)
		return 1
	}
	return 0
}

// logger builds the invocation's logger: stderr, or log_file_path.
func (o Options) logger(conf *NetConf) (*slog.Logger, func()) {
	if o.Logger != nil {
		return o.Logger, func() {}
	}
	w, closer := o.Stderr, func() {}
	if conf.LogFilePath != "" {
		f, err := os.OpenFile(conf.LogFilePath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			w, closer = f, func() { _ = f.Close() }
		} else {
			fmt.Fprintf(o.Stderr, "cannot open log_file_path %s: %v; logging to stderr\n", conf.LogFilePath, err)
		}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: conf.LevelOf()})), closer
}

// ErrorCode maps an error onto a CNI error code.
func ErrorCode(err error) uint {
	var te *types.Error
	var ee *EnvError
	var ce *ConfError
	switch {
	case errors.As(err, &te):
		return te.Code
	case errors.As(err, &ee):
		return types.ErrInvalidEnvironmentVariables
	case errors.As(err, &ce):
		return types.ErrInvalidNetworkConfig
	case errors.Is(err, datastore.ErrUnavailable):
		return types.ErrTryAgainLater
	default:
		return types.ErrInternal
	}
}

// errorJSON is the error object the spec defines, with the config's version.
type errorJSON struct {
	CNIVersion string `json:"cniVersion,omitempty"`
	Code       uint   `json:"code"`
	Msg        string `json:"msg"`
	Details    string `json:"details,omitempty"`
}

// ErrorJSON renders err as the CNI error object.
func ErrorJSON(cniVersion string, err error) []byte {
	e := errorJSON{CNIVersion: cniVersion, Code: ErrorCode(err), Msg: err.Error()}
	var te *types.Error
	if errors.As(err, &te) {
		e.Msg, e.Details = te.Msg, te.Details
	}
	b, _ := json.MarshalIndent(e, "", "    ")
	return b
}

func writeError(w io.Writer, cniVersion string, err error) int {
	if w != nil {
		_, _ = w.Write(ErrorJSON(cniVersion, err))
	}
	return 1
}

// newResult starts an empty 1.0.0 result.
func newResult() *types100.Result { return &types100.Result{CNIVersion: "1.0.0"} }
