package core
import ("testing";"os";"os/exec")
func TestMkBenchCore(t *testing.T){
	if os.Getenv("MK")=="" {t.Skip()}
	child := startChild(t, "heap=1073741824")
	im, rd, _ := build(t, child.pid)
	plain := writeImage(t, im, rd)
	out, err := exec.Command("zstd","-q","-3","-f","-o","/tmp/bench-core.zst",plain).CombinedOutput(); if err!=nil {t.Fatal(err,string(out))}
}
func TestOpenOnly(t *testing.T){
	if os.Getenv("OPEN")=="" {t.Skip()}
	c, err := Open(os.Getenv("OPEN"), OpenOptions{}); if err!=nil {t.Fatal(err)}; c.Close()
}
