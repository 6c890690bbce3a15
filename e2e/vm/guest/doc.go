// Package guest holds the scenarios that run inside the IPIP test VM
// (e2e/vm): its test binary (go test -c) is the VM's workload. Each test
// builds a small cluster of network namespaces (a hub with the datastore and
// bridges, node namespaces running `calicoctl node run`, pods wired by the
// CNI plugin) on a kernel that has the ipip device type, which the build
// machine's kernel lacks. Outside the VM (CALICO_VM_GUEST unset) every test
// skips.
package guest
