//go:build !linux

package cni

import (
	"context"
	"errors"
)

var errNoDataplane = errors.New("the calico CNI plugin needs Linux")

type unsupported struct{}

func defaultDataplane() Dataplane { return unsupported{} }

func (unsupported) Add(context.Context, Endpoint) (string, error)     { return "", errNoDataplane }
func (unsupported) Del(context.Context, string, string, string) error { return errNoDataplane }
func (unsupported) Check(context.Context, Endpoint) error             { return errNoDataplane }
