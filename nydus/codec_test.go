package nydus

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Official BLAKE3 test vectors (BLAKE3-team/BLAKE3 test_vectors/test_vectors.json,
// "hash" mode, first 32 bytes); input byte i is i % 251.
var blake3Vectors = []struct {
	n    int
	hash string
}{
	{0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
	{1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
	{1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"},
	{1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"},
	{1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
	{2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"},
	{2049, "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030"},
	{3072, "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2"},
	{3073, "7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3"},
	{4096, "015094013f57a5277b59d8475c0501042c0b642e531b0a1c8f58d2163229e969"},
	{4097, "9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995"},
	{5120, "9cadc15fed8b5d854562b26a9536d9707cadeda9b143978f319ab34230535833"},
	{5121, "628bd2cb2004694adaab7bbd778a25df25c47b9d4155a55f8fbd79f2fe154cff"},
	{6144, "3e2e5b74e048f3add6d21faab3f83aa44d3b2278afb83b80b3c35164ebeca205"},
	{6145, "f1323a8631446cc50536a9f705ee5cb619424d46887f3c376c695b70e0f0507f"},
	{7168, "61da957ec2499a95d6b8023e2b0e604ec7f6b50e80a9678b89d2628e99ada77a"},
	{7169, "a003fc7a51754a9b3c7fae0367ab3d782dccf28855a03d435f8cfe74605e7817"},
	{8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"},
	{16384, "f875d6646de28985646f34ee13be9a576fd515f76b5b0a26bb324735041ddde4"},
	{31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"},
	{102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"},
}

func TestBlake3Vectors(t *testing.T) {
	in := make([]byte, 102400)
	for i := range in {
		in[i] = byte(i % 251)
	}
	for _, v := range blake3Vectors {
		got := blake3Sum256(in[:v.n])
		if hex.EncodeToString(got[:]) != v.hash {
			t.Errorf("blake3(%d) = %x, want %s", v.n, got, v.hash)
		}
	}
}

// lz4FrameBlocks extracts the blocks of an LZ4 frame written with independent
// blocks (the lz4 CLI default); it returns (block, stored-uncompressed) pairs.
func lz4FrameBlocks(t *testing.T, f []byte) (blocks [][]byte, raw []bool) {
	t.Helper()
	if binary.LittleEndian.Uint32(f) != 0x184D2204 {
		t.Fatalf("not an lz4 frame")
	}
	flg := f[4]
	p := 6
	if flg&0x08 != 0 {
		p += 8
	}
	if flg&0x01 != 0 {
		p += 4
	}
	p++ // header checksum
	for {
		sz := binary.LittleEndian.Uint32(f[p:])
		p += 4
		if sz == 0 {
			break
		}
		n := int(sz & 0x7fffffff)
		blocks = append(blocks, f[p:p+n])
		raw = append(raw, sz&0x80000000 != 0)
		p += n
		if flg&0x10 != 0 {
			p += 4
		}
	}
	return blocks, raw
}

func TestLZ4BlockWithCLI(t *testing.T) {
	lz4, err := exec.LookPath("lz4")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("lz4 CLI not found and CI=true")
		}
		t.Skip("SKIP: lz4 CLI not installed; LZ4 block decoding only checked by the corruption cases")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(1))
	inputs := [][]byte{
		[]byte("a"),
		bytes.Repeat([]byte("abc"), 5000),         // long matches, overlap copies
		bytes.Repeat([]byte{0}, 70000),            // long run, long lengths
		[]byte("hello hello hello hello world!!"), // short
	}
	text := make([]byte, 60000)
	words := []string{"nydus ", "rafs ", "erofs ", "chunk ", "blob ", "\n", "bootstrap "}
	for i := 0; i < len(text); {
		w := words[rng.Intn(len(words))]
		i += copy(text[i:], w)
	}
	inputs = append(inputs, text)
	rnd := make([]byte, 3000)
	rng.Read(rnd)
	inputs = append(inputs, append(rnd, bytes.Repeat(rnd[:100], 30)...))
	checked := 0
	for i, in := range inputs {
		src := filepath.Join(dir, "in")
		if err := os.WriteFile(src, in, 0o644); err != nil {
			t.Fatal(err)
		}
		// -B4: 64 KiB blocks, -BI not set: independent blocks, --no-frame-crc
		out, err := exec.Command(lz4, "-q", "-f", "-B4", "--no-frame-crc", src, filepath.Join(dir, "out")).CombinedOutput()
		if err != nil {
			t.Fatalf("lz4: %v %s", err, out)
		}
		f, err := os.ReadFile(filepath.Join(dir, "out"))
		if err != nil {
			t.Fatal(err)
		}
		blocks, raw := lz4FrameBlocks(t, f)
		off := 0
		for j, b := range blocks {
			n := min(64<<10, len(in)-off)
			want := in[off : off+n]
			off += n
			if raw[j] {
				continue
			}
			dst := make([]byte, n)
			if err := lz4DecompressBlock(b, dst); err != nil {
				t.Fatalf("input %d block %d: %v", i, j, err)
			}
			if !bytes.Equal(dst, want) {
				t.Fatalf("input %d block %d: content differs", i, j)
			}
			checked++
			// wrong expected sizes are errors, never panics
			if err := lz4DecompressBlock(b, make([]byte, n+1)); err == nil {
				t.Fatalf("input %d block %d: longer output accepted", i, j)
			}
			if n > 1 {
				if err := lz4DecompressBlock(b, make([]byte, n-1)); err == nil {
					t.Fatalf("input %d block %d: shorter output accepted", i, j)
				}
			}
			for k := 0; k < 50 && len(b) > 0; k++ {
				c := bytes.Clone(b)
				c[rng.Intn(len(c))] ^= byte(1 + rng.Intn(255))
				_ = lz4DecompressBlock(c, make([]byte, n))
				_ = lz4DecompressBlock(c[:rng.Intn(len(c))], make([]byte, n))
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d compressed blocks checked", checked)
	}
	t.Logf("lz4 blocks decoded and compared: %d", checked)
}

func TestCIV1RoundTrip(t *testing.T) {
	for _, e := range []CIEntry{
		{CompressedOffset: 0, CompressedSize: 4828, UncompressedOffset: 0, UncompressedSize: 16931, Compressed: true},
		{CompressedOffset: 0xff_ffff_ffff, CompressedSize: 16 << 20, UncompressedOffset: 0xfff_ffff_f000, UncompressedSize: 16 << 20},
		{CompressedOffset: 12345, CompressedSize: 1, UncompressedOffset: 4096, UncompressedSize: 0x123456, Compressed: true},
	} {
		b := AppendCIV1(nil, e)
		if got := DecodeCIV1(b); got != e {
			t.Errorf("V1 %+v -> %+v", e, got)
		}
		b = AppendCIV2(nil, e)
		if got := DecodeCIV2(b); got.CompressedOffset != e.CompressedOffset || got.UncompressedOffset != e.UncompressedOffset ||
			got.UncompressedSize != e.UncompressedSize || got.Compressed != e.Compressed ||
			(e.CompressedSize < 1<<24 && got.CompressedSize != e.CompressedSize) {
			t.Errorf("V2 %+v -> %+v", e, got)
		}
	}
}

func TestDevEncoding(t *testing.T) {
	for _, c := range [][2]uint32{{0, 0}, {1, 3}, {8, 1}, {259, 65536}, {4095, 1048575}} {
		ma, mi := DecodeDev(EncodeDev(c[0], c[1]))
		if ma != c[0] || mi != c[1] {
			t.Errorf("dev %v -> %d,%d", c, ma, mi)
		}
	}
}

func TestSectionHeaderRoundTrip(t *testing.T) {
	h := SectionHeader("rafs.blob.toc", 512)
	name, size, err := ParseSectionHeader(h[:])
	if err != nil || name != "rafs.blob.toc" || size != 512 {
		t.Fatalf("got %q %d %v", name, size, err)
	}
	h[10] ^= 1
	if _, _, err := ParseSectionHeader(h[:]); err == nil {
		t.Fatal("checksum not verified")
	}
}
