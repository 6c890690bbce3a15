package cni

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// delegateIPAM runs another IPAM plugin (e.g. host-local) found in CNI_PATH
// with the same network config and CNI_* environment, as the spec says a
// plugin delegates. ADD returns its result; DEL returns nil.
func (p *plugin) delegateIPAM(ctx context.Context, command string) (*types100.Result, error) {
	bin, err := findPlugin(p.conf.IPAM.Type, p.args.Path)
	if err != nil {
		return nil, err
	}
	if len(p.stdin) == 0 {
		return nil, errors.New("no network config to delegate")
	}
	stdin := p.stdin
	cmd := exec.CommandContext(ctx, bin)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = append(os.Environ(),
		"CNI_COMMAND="+command,
		"CNI_CONTAINERID="+p.args.ContainerID,
		"CNI_NETNS="+p.args.Netns,
		"CNI_IFNAME="+p.args.IfName,
		"CNI_ARGS="+p.args.RawArgs,
		"CNI_PATH="+strings.Join(p.args.Path, ":"),
	)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = p.o.Stderr
	runErr := cmd.Run()
	if runErr != nil {
		return nil, fmt.Errorf("IPAM plugin %s %s failed: %w: %s", p.conf.IPAM.Type, command, runErr, strings.TrimSpace(stdout.String()))
	}
	if command != CmdAdd {
		return nil, nil
	}
	r, err := version.NewResult(p.conf.CNIVersion, stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("decoding the result of IPAM plugin %s: %w", p.conf.IPAM.Type, err)
	}
	return types100.NewResultFromResult(r)
}

// findPlugin looks a plugin binary up in CNI_PATH.
func findPlugin(name string, path []string) (string, error) {
	if strings.ContainsRune(name, '/') {
		return "", fmt.Errorf("ipam.type %q may not contain a path", name)
	}
	for _, dir := range path {
		full := filepath.Join(dir, name)
		if st, err := os.Stat(full); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return full, nil
		}
	}
	return "", fmt.Errorf("IPAM plugin %q not found in CNI_PATH %q", name, strings.Join(path, ":"))
}
