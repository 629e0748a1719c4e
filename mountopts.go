package main

import (
	"strings"

	"github.com/spf13/pflag"
)

// This file lets procmem mount as every other filesystem mounts: mount -t
// fuse.procmem and fstab run the mount.fuse3 helper (Debian: fuse3),
// which runs "procmem SOURCE MOUNTPOINT -o OPTIONS", and options are
// spelled as mount options.

// mountHelperArgs turns the mount.fuse3 helper's call, SOURCE MOUNTPOINT
// with -o OPTIONS, into the mount verb's, in the background, as mount(8)
// wants: it waits for the helper to return. ok is false for anything
// else. SOURCE is "procmem" (fstab wants a word there); any word will do
// when options come with it, as they always do from mount.fuse3.
func mountHelperArgs(args []string) (verbArgs []string, ok bool) {
	var words, options []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-o" && i+1 < len(args):
			options = append(options, args[i+1])
			i++
		case strings.HasPrefix(a, "-o") && len(a) > 2:
			options = append(options, a[2:])
		case strings.HasPrefix(a, "-"):
			return nil, false
		default:
			words = append(words, a)
		}
	}
	if len(words) != 2 || len(options) == 0 && words[0] != "procmem" {
		return nil, false
	}
	verbArgs = []string{"mount", "--background"}
	for _, o := range options {
		verbArgs = append(verbArgs, "-o", o)
	}
	return append(verbArgs, words[1]), true
}

// genericMountOptions are the options mount(8), mount.fuse3 and fstab
// pass to every filesystem, which mean nothing here: a procmem mount has
// no devices, setuid or executable files and no times to keep, is always
// synchronous, and whether it is mounted at boot, or waits for the
// network, is for mount(8) and systemd to decide.
var genericMountOptions = map[string]bool{
	"defaults": true, "dev": true, "nodev": true, "suid": true, "nosuid": true, "exec": true, "noexec": true,
	"async": true, "sync": true, "dirsync": true, "atime": true, "noatime": true, "relatime": true,
	"norelatime": true, "strictatime": true, "nostrictatime": true, "diratime": true, "nodiratime": true,
	"lazytime": true, "nolazytime": true, "auto": true, "noauto": true, "user": true, "nouser": true,
	"users": true, "owner": true, "group": true, "nofail": true, "_netdev": true, "nonempty": true,
	"default_permissions": true, "fsname": true, "subtype": true, "comment": true,
}

// mountOptionFlags are options whose names are no flag's.
var mountOptionFlags = map[string]string{"ro": "read-only", "noxattrs": "no-xattrs"}

// applyMountOptions sets the mount verb's flags from -o OPTIONS, each a
// comma-separated list of NAME or NAME=VALUE: allow_other is
// --allow-other, timeout=5s --timeout 5s, ro --read-only; rw undoes ro.
func applyMountOptions(flags *pflag.FlagSet, lists []string) error {
	for _, list := range lists {
		for _, opt := range strings.Split(list, ",") {
			name, value, hasValue := strings.Cut(opt, "=")
			switch {
			case opt == "" || genericMountOptions[name] || strings.HasPrefix(name, "x-"):
				continue
			case opt == "rw":
				name, value, hasValue = "read-only", "false", true
			}
			flag := flags.Lookup(mountOptionFlag(name))
			if flag == nil || flag.Name == "options" || flag.Name == "background" {
				return usagef("mount: unknown mount option %q: procmem takes allow_other, ro, force_write, xattrs, no_async_dio, timeout=DURATION, core=FILE and debug", opt)
			}
			if !hasValue {
				if flag.Value.Type() != "bool" {
					return usagef("mount: mount option %s wants a value: %s=...", name, name)
				}
				value = "true"
			}
			if err := flags.Set(flag.Name, value); err != nil {
				return usagef("mount: mount option %q: %v", opt, err)
			}
		}
	}
	return nil
}

// mountOptionFlag is the flag a mount option names: the option with
// dashes for underscores, or one of mountOptionFlags.
func mountOptionFlag(name string) string {
	if f, ok := mountOptionFlags[name]; ok {
		return f
	}
	return strings.ReplaceAll(name, "_", "-")
}
