// Package firmware holds the firmware identity of this build (version and build
// stamp, set at link time with -ldflags) and the parity rule cluster members
// must satisfy. It imports nothing of Postern's.
package firmware

import "fmt"

// Version is the firmware version, set at build time:
//
//	go build -ldflags "-X postern/firmware.Version=1.2.3"
var Version = "0.1.0-dev"

// Build is a free-form build stamp (commit, date), set at build time like Version.
var Build = "unknown"

// String returns "Version (build Build)".
func String() string { return fmt.Sprintf("%s (build %s)", Version, Build) }

// Compatible reports whether a member running version other may replicate with
// this one: the rule is strict equality of the version string, as the cluster
// reference requires ("the machines have the same firmware version").
func Compatible(other string) bool { return other == Version }
