//go:build tools

// Package tools pins dependencies that are about to be used. Temporary.
package tools

import (
	_ "github.com/google/uuid"
	_ "github.com/olekukonko/tablewriter"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "go.etcd.io/etcd/client/v3"
	_ "go.etcd.io/etcd/server/v3/embed"
	_ "sigs.k8s.io/yaml"
)
