package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestMountHelperArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string // nil: not the helper's call
	}{
		// What mount.fuse3 runs for mount -t fuse.procmem and fstab.
		{[]string{"procmem", "/mnt/procmem", "-o", "rw,allow_other,dev,suid"},
			[]string{"mount", "--background", "-o", "rw,allow_other,dev,suid", "/mnt/procmem"}},
		{[]string{"none", "/mnt/p", "-oro", "-o", "timeout=1s"},
			[]string{"mount", "--background", "-o", "ro", "-o", "timeout=1s", "/mnt/p"}},
		{[]string{"procmem", "/mnt/procmem"}, []string{"mount", "--background", "/mnt/procmem"}},
		// A mistyped verb is no mount.
		{[]string{"infi", "/tmp"}, nil},
		{[]string{"infi"}, nil},
		{[]string{"procmem", "/a", "/b", "-o", "ro"}, nil},
		{[]string{"procmem", "/a", "-f"}, nil},
	} {
		got, ok := mountHelperArgs(c.args)
		if ok != (c.want != nil) || !reflect.DeepEqual(got, c.want) {
			t.Errorf("mountHelperArgs(%q) = %q, %v; want %q", c.args, got, ok, c.want)
		}
	}
}

// mountFlags declares the mount verb's flags, for the option tests.
func mountFlags() *pflag.FlagSet {
	flags := pflag.NewFlagSet("mount", pflag.ContinueOnError)
	mountVerb.setup(flags)
	return flags
}

func TestApplyMountOptions(t *testing.T) {
	flags := mountFlags()
	err := applyMountOptions(flags, []string{"rw,allow_other,dev,suid,nofail,_netdev,x-systemd.automount,defaults", "force_write,timeout=250ms,noxattrs,no_async_dio"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"allow-other": "true", "force-write": "true", "timeout": "250ms", "no-xattrs": "true", "no-async-dio": "true", "read-only": "false", "debug": "false"} {
		if got := flags.Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %s, want %s", name, got, want)
		}
	}
	flags = mountFlags()
	if err := applyMountOptions(flags, []string{"ro"}); err != nil || flags.Lookup("read-only").Value.String() != "true" {
		t.Errorf("ro: %v, --read-only %s", err, flags.Lookup("read-only").Value)
	}
	for _, bad := range []string{"bogus", "timeout", "timeout=soon", "allow_other=maybe", "background", "options=ro", "read-only=1x"} {
		var ue usageError
		if err := applyMountOptions(mountFlags(), []string{bad}); !errors.As(err, &ue) || strings.Contains(ue.msg, "\n") {
			t.Errorf("option %q: %v, want a one-line usage error", bad, err)
		}
	}
}

func FuzzMountOptions(f *testing.F) {
	for _, seed := range []string{"rw,allow_other,dev,suid", "ro,timeout=5s", "x-systemd.automount,nofail", "=,,=", "timeout=", "no_xattrs=false"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, opts string) {
		var ue usageError
		if err := applyMountOptions(mountFlags(), []string{opts}); err != nil && !errors.As(err, &ue) {
			t.Fatalf("option list %q: %v is no usage error", opts, err)
		}
		mountHelperArgs(strings.Fields(opts))
	})
}
