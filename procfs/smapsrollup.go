package procfs

// This file reads /proc/PID/smaps_rollup, described in proc_pid_smaps_rollup(5).

import "fmt"

// SmapsRollup reads /proc/PID/smaps_rollup: the fields of smaps summed
// over all mappings, with the proportional set split by kind (Pss_Anon,
// Pss_File, Pss_Shmem), which smaps does not have. The kernel makes it
// walking the page tables as smaps does but writes one entry, so it is
// read in a few milliseconds where smaps of 60,000 mappings takes 75.
// The Region spans the lowest to the highest mapping and is named
// "[rollup]".
func (p *Process) SmapsRollup() (Mapping, error) {
	b, err := p.ReadFile("smaps_rollup")
	if err != nil {
		return Mapping{}, err
	}
	return parseSmapsRollup(b)
}

// parseSmapsRollup parses smaps_rollup: one smaps entry. A process without
// an address space (a kernel thread, a zombie) has an empty file.
func parseSmapsRollup(text []byte) (Mapping, error) {
	mappings, err := parseSmapsText(text)
	if err != nil {
		return Mapping{}, err
	}
	switch len(mappings) {
	case 0:
		return Mapping{}, nil
	case 1:
		return mappings[0], nil
	}
	return Mapping{}, fmt.Errorf("%w: smaps_rollup: %d entries, want one", ErrParse, len(mappings))
}
