package cni

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/opencalico/calicoctl/resources"
)

// Commands of the CNI protocol.
const (
	CmdAdd     = "ADD"
	CmdDel     = "DEL"
	CmdCheck   = "CHECK"
	CmdVersion = "VERSION"
	CmdStatus  = "STATUS"
	CmdGC      = "GC"
)

// Args are the CNI_* environment variables of one invocation.
type Args struct {
	Command     string
	ContainerID string
	Netns       string
	IfName      string
	Path        []string // CNI_PATH, split on ':'
	// Raw CNI_ARGS and what we read from it.
	RawArgs string
	K8s     K8sArgs
}

// K8sArgs are the Kubernetes keys of CNI_ARGS.
type K8sArgs struct {
	Namespace        string // K8S_POD_NAMESPACE
	Name             string // K8S_POD_NAME
	InfraContainerID string // K8S_POD_INFRA_CONTAINER_ID
	UID              string // K8S_POD_UID
}

// EnvError is a missing or malformed CNI_* variable.
type EnvError struct {
	Var    string
	Reason string
}

func (e *EnvError) Error() string { return fmt.Sprintf("environment variable %s %s", e.Var, e.Reason) }

// ParseArgs reads the CNI_* variables; which are required depends on the
// command (CNI_NETNS is optional for DEL, as the spec allows).
func ParseArgs(env func(string) string) (*Args, error) {
	a := &Args{
		Command:     env("CNI_COMMAND"),
		ContainerID: env("CNI_CONTAINERID"),
		Netns:       env("CNI_NETNS"),
		IfName:      env("CNI_IFNAME"),
		RawArgs:     env("CNI_ARGS"),
	}
	for _, p := range strings.Split(env("CNI_PATH"), ":") {
		if p != "" {
			a.Path = append(a.Path, p)
		}
	}
	switch a.Command {
	case "":
		return nil, &EnvError{Var: "CNI_COMMAND", Reason: "is not set"}
	case CmdAdd, CmdDel, CmdCheck:
	case CmdVersion, CmdStatus, CmdGC:
		return a, nil
	default:
		return nil, &EnvError{Var: "CNI_COMMAND", Reason: fmt.Sprintf("has unknown value %q", a.Command)}
	}
	if a.ContainerID == "" {
		return nil, &EnvError{Var: "CNI_CONTAINERID", Reason: "is not set"}
	}
	if a.IfName == "" {
		return nil, &EnvError{Var: "CNI_IFNAME", Reason: "is not set"}
	}
	if a.Netns == "" && a.Command != CmdDel {
		return nil, &EnvError{Var: "CNI_NETNS", Reason: "is not set"}
	}
	k, err := ParseK8sArgs(a.RawArgs)
	if err != nil {
		return nil, err
	}
	a.K8s = k
	return a, nil
}

// ParseK8sArgs reads "K=V;K=V" CNI_ARGS. Unknown keys are ignored (runtimes
// pass IgnoreUnknown=1 and keys for other plugins); a pair without '=' is an
// error.
func ParseK8sArgs(s string) (K8sArgs, error) {
	var k K8sArgs
	if strings.TrimSpace(s) == "" {
		return k, nil
	}
	for _, pair := range strings.Split(s, ";") {
		if pair == "" {
			continue
		}
		key, val, ok := strings.Cut(pair, "=")
		if !ok {
			return K8sArgs{}, &EnvError{Var: "CNI_ARGS", Reason: fmt.Sprintf("has a malformed pair %q (want KEY=VALUE)", pair)}
		}
		switch key {
		case "K8S_POD_NAMESPACE":
			k.Namespace = val
		case "K8S_POD_NAME":
			k.Name = val
		case "K8S_POD_INFRA_CONTAINER_ID":
			k.InfraContainerID = val
		case "K8S_POD_UID":
			k.UID = val
		}
	}
	return k, nil
}

// IsK8s reports whether the invocation is for a Kubernetes pod.
func (a *Args) IsK8s() bool { return a.K8s.Name != "" && a.K8s.Namespace != "" }

// Namespace is the pod's namespace ("default" outside Kubernetes).
func (a *Args) Namespace() string {
	if a.IsK8s() {
		return a.K8s.Namespace
	}
	return "default"
}

// DefaultInterfacePrefix is the host-side veth prefix.
const DefaultInterfacePrefix = "cali"

// InterfacePrefix returns the first entry of FELIX_INTERFACEPREFIX, or "cali".
func InterfacePrefix(env func(string) string) string {
	if v := env("FELIX_INTERFACEPREFIX"); v != "" {
		if p := strings.TrimSpace(strings.Split(v, ",")[0]); p != "" {
			return p
		}
	}
	return DefaultInterfacePrefix
}

// VethName is the host-side interface name: prefix and the first 11 hex
// digits of SHA-1("<namespace>.<pod>") for a pod, or of the container ID
// otherwise; at most 15 characters (IFNAMSIZ-1).
func VethName(prefix string, a *Args) string {
	var suffix string
	if a.IsK8s() {
		sum := sha1.Sum([]byte(a.K8s.Namespace + "." + a.K8s.Name))
		suffix = hex.EncodeToString(sum[:])[:11]
	} else {
		suffix = a.ContainerID
		if len(suffix) > 11 {
			suffix = suffix[:11]
		}
	}
	name := prefix + suffix
	if len(name) > 15 {
		name = name[:15]
	}
	return name
}

// HandleID is the IPAM handle of a container: "<network>.<containerID>".
func HandleID(network, containerID string) string { return network + "." + containerID }

// LegacyHandleID is the handle older plugins used: "<namespace>.<pod>".
func LegacyHandleID(a *Args) string { return a.K8s.Namespace + "." + a.K8s.Name }

// WEPIdentifiers returns the WorkloadEndpoint's identifying fields.
func WEPIdentifiers(node string, a *Args) resources.WEPIdentifiers {
	if a.IsK8s() {
		return resources.WEPIdentifiers{Node: node, Orchestrator: resources.OrchestratorKubernetes, Pod: a.K8s.Name, Endpoint: a.IfName}
	}
	return resources.WEPIdentifiers{Node: node, Orchestrator: resources.OrchestratorCNI, ContainerID: a.ContainerID, Endpoint: a.IfName}
}
