package pointers

import (
	"bytes"
	"encoding/binary"
	"flag"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "write testdata/small.map anew")

func TestMain(m *testing.M) {
	flag.Parse()
	if *update {
		var b bytes.Buffer
		if err := WriteMap(&b, smallMap()); err != nil {
			panic(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "small.map"), b.Bytes(), 0o644); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

// putCRC sets the checksum at the end of a map file.
func putCRC(b []byte) {
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
}
