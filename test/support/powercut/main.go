// reseat-powercut-fs: a FUSE file system for tests that loses every write not yet fsync'd when the
// test "cuts the power".
//
// Everything lives in memory. Each file has its current bytes and its durable bytes (as of its last
// fsync/fdatasync); each directory has its current entries and its durable entries (as of its last
// fsync of the directory itself). A write, create, unlink, rename or mkdir changes only the current
// side; fsync of a file makes its data (and size, mode, owner) durable; fsync of a directory makes its
// entries durable (not the data of the files they name). "cut" replaces the current side by the durable
// side everywhere: data never fsync'd is gone, so are names never made durable by a directory fsync,
// and files reachable only through such names. With "cut <p>" each 4 KiB page written since the last
// fsync is first kept with probability p, independently (the kernel may have written some dirty pages
// back before the power went): programs must not depend on unsynced data being all there or all gone.
//
// All I/O is direct (no kernel page cache) and no entry or attribute is cached by the kernel, so after a
// cut every process sees the durable state. POSIX locks are left to the kernel.
//
// Usage: reseat-powercut-fs <mountpoint> [dir...]   (dirs are created durable under the root)
// Commands on stdin, one per line, each answered with one line on stdout:
//   cut [p]   -> "ok cut files=N pages=N kept=N entries=N"
//   stats     -> "ok stats inodes=N bytes=N durable=N"
// EOF on stdin unmounts and exits. "ready" is printed once mounted.
package main

import (
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

const pageSize = 4096

type inode struct {
	ino  uint64
	mode uint32 // S_IFDIR or S_IFREG | permission bits
	uid  uint32
	gid  uint32
	// durable metadata (as of the last fsync)
	dMode, dUid, dGid uint32
	mtime             time.Time

	// regular files
	data    []byte
	durable []byte
	dirty   map[int64]bool // pages written since the last fsync

	// directories
	children        map[string]uint64
	durableChildren map[string]uint64

	links    int // current directory entries naming it
	durLinks int // durable directory entries naming it
	opens    int
}

func (n *inode) isDir() bool { return n.mode&syscall.S_IFMT == syscall.S_IFDIR }

type dirHandle struct {
	entries []fuse.DirEntry
}

type powercutFS struct {
	fuse.RawFileSystem
	mu      sync.Mutex
	inodes  map[uint64]*inode
	nextIno uint64
	dirs    map[uint64]*dirHandle
	nextFh  uint64
	rng     *rand.Rand
}

func newFS() *powercutFS {
	fs := &powercutFS{
		RawFileSystem: fuse.NewDefaultRawFileSystem(),
		inodes:        map[uint64]*inode{},
		nextIno:       fuse.FUSE_ROOT_ID + 1,
		dirs:          map[uint64]*dirHandle{},
		nextFh:        1,
		rng:           rand.New(rand.NewSource(time.Now().UnixNano())),
	}
	root := &inode{ino: fuse.FUSE_ROOT_ID, mode: syscall.S_IFDIR | 0o755, children: map[string]uint64{}, durableChildren: map[string]uint64{}, mtime: time.Now(), links: 1, durLinks: 1}
	root.dMode = root.mode
	fs.inodes[root.ino] = root
	return fs
}

func (fs *powercutFS) String() string { return "reseat-powercut-fs" }

func (fs *powercutFS) newInode(mode, uid, gid uint32) *inode {
	n := &inode{ino: fs.nextIno, mode: mode, uid: uid, gid: gid, dMode: mode, dUid: uid, dGid: gid, mtime: time.Now()}
	fs.nextIno++
	if n.isDir() {
		n.children = map[string]uint64{}
		n.durableChildren = map[string]uint64{}
	} else {
		n.dirty = map[int64]bool{}
	}
	fs.inodes[n.ino] = n
	return n
}

func (fs *powercutFS) attr(n *inode, out *fuse.Attr) {
	out.Ino = n.ino
	out.Mode = n.mode
	out.Owner = fuse.Owner{Uid: n.uid, Gid: n.gid}
	out.Nlink = uint32(max(n.links, 1))
	if n.isDir() {
		out.Nlink = 2
		out.Size = 4096
	} else {
		out.Size = uint64(len(n.data))
	}
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = pageSize
	sec := uint64(n.mtime.Unix())
	nsec := uint32(n.mtime.Nanosecond())
	out.Mtime, out.Atime, out.Ctime = sec, sec, sec
	out.Mtimensec, out.Atimensec, out.Ctimensec = nsec, nsec, nsec
}

func (fs *powercutFS) entry(n *inode, out *fuse.EntryOut) {
	out.NodeId = n.ino
	out.Generation = 1
	out.SetEntryTimeout(0)
	out.SetAttrTimeout(0)
	fs.attr(n, &out.Attr)
}

// forgetIfUnused frees a file nobody can reach any more, now or after a cut.
func (fs *powercutFS) forgetIfUnused(n *inode) {
	if n != nil && !n.isDir() && n.links == 0 && n.durLinks == 0 && n.opens == 0 {
		delete(fs.inodes, n.ino)
	}
}

func (fs *powercutFS) dir(id uint64) (*inode, fuse.Status) {
	n := fs.inodes[id]
	if n == nil {
		return nil, fuse.ENOENT
	}
	if !n.isDir() {
		return nil, fuse.ENOTDIR
	}
	return n, fuse.OK
}

func (fs *powercutFS) Lookup(cancel <-chan struct{}, header *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	parent, st := fs.dir(header.NodeId)
	if !st.Ok() {
		return st
	}
	child := fs.inodes[parent.children[name]]
	if child == nil {
		return fuse.ENOENT
	}
	fs.entry(child, out)
	return fuse.OK
}

func (fs *powercutFS) GetAttr(cancel <-chan struct{}, input *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.inodes[input.NodeId]
	if n == nil {
		return fuse.ENOENT
	}
	out.SetTimeout(0)
	fs.attr(n, &out.Attr)
	return fuse.OK
}

func (fs *powercutFS) SetAttr(cancel <-chan struct{}, input *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.inodes[input.NodeId]
	if n == nil {
		return fuse.ENOENT
	}
	if mode, ok := input.GetMode(); ok {
		n.mode = n.mode&syscall.S_IFMT | mode
	}
	if uid, ok := input.GetUID(); ok {
		n.uid = uid
	}
	if gid, ok := input.GetGID(); ok {
		n.gid = gid
	}
	if size, ok := input.GetSize(); ok {
		if n.isDir() {
			return fuse.EISDIR
		}
		fs.truncate(n, int64(size))
	}
	n.mtime = time.Now()
	out.SetTimeout(0)
	fs.attr(n, &out.Attr)
	return fuse.OK
}

func (fs *powercutFS) truncate(n *inode, size int64) {
	old := int64(len(n.data))
	if size < old {
		n.data = n.data[:size]
	} else if size > old {
		n.data = append(n.data, make([]byte, size-old)...)
	}
	// The page holding the new end (and any new pages) changed.
	for p := min(old, size) / pageSize; p <= max(old, size)/pageSize; p++ {
		n.dirty[p] = true
	}
}

func (fs *powercutFS) link(parent *inode, name string, child *inode) {
	if old := fs.inodes[parent.children[name]]; old != nil {
		old.links--
		defer fs.forgetIfUnused(old)
	}
	parent.children[name] = child.ino
	child.links++
	parent.mtime = time.Now()
}

func (fs *powercutFS) Mkdir(cancel <-chan struct{}, input *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	parent, st := fs.dir(input.NodeId)
	if !st.Ok() {
		return st
	}
	if _, exists := parent.children[name]; exists {
		return fuse.Status(syscall.EEXIST)
	}
	n := fs.newInode(syscall.S_IFDIR|input.Mode&0o7777, input.Uid, input.Gid)
	fs.link(parent, name, n)
	fs.entry(n, out)
	return fuse.OK
}

func (fs *powercutFS) Create(cancel <-chan struct{}, input *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	parent, st := fs.dir(input.NodeId)
	if !st.Ok() {
		return st
	}
	n := fs.inodes[parent.children[name]]
	if n != nil {
		if input.Flags&syscall.O_EXCL != 0 {
			return fuse.Status(syscall.EEXIST)
		}
		if n.isDir() {
			return fuse.EISDIR
		}
		if input.Flags&syscall.O_TRUNC != 0 {
			fs.truncate(n, 0)
		}
	} else {
		n = fs.newInode(syscall.S_IFREG|input.Mode&0o7777, input.Uid, input.Gid)
		fs.link(parent, name, n)
	}
	n.opens++
	fs.entry(n, &out.EntryOut)
	out.OpenOut.Fh = n.ino
	out.OpenOut.OpenFlags = fuse.FOPEN_DIRECT_IO
	return fuse.OK
}

func (fs *powercutFS) Open(cancel <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.inodes[input.NodeId]
	if n == nil {
		return fuse.ENOENT
	}
	if n.isDir() {
		return fuse.EISDIR
	}
	if input.Flags&syscall.O_TRUNC != 0 {
		fs.truncate(n, 0)
	}
	n.opens++
	out.Fh = n.ino
	out.OpenFlags = fuse.FOPEN_DIRECT_IO
	return fuse.OK
}

func (fs *powercutFS) Release(cancel <-chan struct{}, input *fuse.ReleaseIn) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if n := fs.inodes[input.NodeId]; n != nil && n.opens > 0 {
		n.opens--
		fs.forgetIfUnused(n)
	}
}

func (fs *powercutFS) Flush(cancel <-chan struct{}, input *fuse.FlushIn) fuse.Status { return fuse.OK }

func (fs *powercutFS) Read(cancel <-chan struct{}, input *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.inodes[input.NodeId]
	if n == nil {
		return nil, fuse.ENOENT
	}
	start := int64(input.Offset)
	if start >= int64(len(n.data)) {
		return fuse.ReadResultData(nil), fuse.OK
	}
	end := min(start+int64(input.Size), int64(len(n.data)))
	copied := copy(buf, n.data[start:end])
	return fuse.ReadResultData(buf[:copied]), fuse.OK
}

func (fs *powercutFS) Write(cancel <-chan struct{}, input *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.inodes[input.NodeId]
	if n == nil {
		return 0, fuse.ENOENT
	}
	start := int64(input.Offset)
	end := start + int64(len(data))
	if end > int64(len(n.data)) {
		fs.truncate(n, end)
	}
	copy(n.data[start:end], data)
	for p := start / pageSize; p <= (end-1)/pageSize && len(data) > 0; p++ {
		n.dirty[p] = true
	}
	n.mtime = time.Now()
	return uint32(len(data)), fuse.OK
}

// Fsync: the file's data, size and metadata become durable.
func (fs *powercutFS) Fsync(cancel <-chan struct{}, input *fuse.FsyncIn) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.inodes[input.NodeId]
	if n == nil {
		return fuse.ENOENT
	}
	fs.persistFile(n)
	return fuse.OK
}

func (fs *powercutFS) persistFile(n *inode) {
	n.dMode, n.dUid, n.dGid = n.mode, n.uid, n.gid
	if n.isDir() {
		return
	}
	size := int64(len(n.data))
	if int64(len(n.durable)) > size {
		n.durable = n.durable[:size]
	} else if int64(len(n.durable)) < size {
		n.durable = append(n.durable, make([]byte, size-int64(len(n.durable)))...)
	}
	for p := range n.dirty {
		start := p * pageSize
		if start < size {
			copy(n.durable[start:min(start+pageSize, size)], n.data[start:min(start+pageSize, size)])
		}
	}
	n.dirty = map[int64]bool{}
}

// FsyncDir: the directory's entries become durable (not the data of the files they name).
func (fs *powercutFS) FsyncDir(cancel <-chan struct{}, input *fuse.FsyncIn) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	d, st := fs.dir(input.NodeId)
	if !st.Ok() {
		return st
	}
	d.dMode, d.dUid, d.dGid = d.mode, d.uid, d.gid
	var released []*inode
	for name, ino := range d.durableChildren {
		if c := fs.inodes[ino]; c != nil && d.children[name] != ino {
			c.durLinks--
			released = append(released, c)
		}
	}
	for name, ino := range d.children {
		if c := fs.inodes[ino]; c != nil && d.durableChildren[name] != ino {
			c.durLinks++
		}
	}
	d.durableChildren = copyEntries(d.children)
	for _, c := range released {
		fs.forgetIfUnused(c)
	}
	return fuse.OK
}

func copyEntries(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (fs *powercutFS) Unlink(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	parent, st := fs.dir(header.NodeId)
	if !st.Ok() {
		return st
	}
	n := fs.inodes[parent.children[name]]
	if n == nil {
		return fuse.ENOENT
	}
	if n.isDir() {
		return fuse.Status(syscall.EISDIR)
	}
	delete(parent.children, name)
	n.links--
	parent.mtime = time.Now()
	fs.forgetIfUnused(n)
	return fuse.OK
}

func (fs *powercutFS) Rmdir(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	parent, st := fs.dir(header.NodeId)
	if !st.Ok() {
		return st
	}
	n := fs.inodes[parent.children[name]]
	if n == nil {
		return fuse.ENOENT
	}
	if !n.isDir() {
		return fuse.ENOTDIR
	}
	if len(n.children) > 0 {
		return fuse.Status(syscall.ENOTEMPTY)
	}
	delete(parent.children, name)
	n.links--
	parent.mtime = time.Now()
	return fuse.OK
}

func (fs *powercutFS) Rename(cancel <-chan struct{}, input *fuse.RenameIn, oldName string, newName string) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	from, st := fs.dir(input.NodeId)
	if !st.Ok() {
		return st
	}
	to, st := fs.dir(input.Newdir)
	if !st.Ok() {
		return st
	}
	n := fs.inodes[from.children[oldName]]
	if n == nil {
		return fuse.ENOENT
	}
	const renameNoReplace = 1
	if input.Flags&^renameNoReplace != 0 {
		return fuse.EINVAL
	}
	if target := fs.inodes[to.children[newName]]; target != nil {
		if target == n {
			return fuse.OK
		}
		if input.Flags&renameNoReplace != 0 {
			return fuse.Status(syscall.EEXIST)
		}
		if target.isDir() != n.isDir() {
			return fuse.Status(map[bool]syscall.Errno{true: syscall.EISDIR, false: syscall.ENOTDIR}[target.isDir()])
		}
		if target.isDir() && len(target.children) > 0 {
			return fuse.Status(syscall.ENOTEMPTY)
		}
	}
	delete(from.children, oldName)
	n.links--
	fs.link(to, newName, n)
	from.mtime = time.Now()
	return fuse.OK
}

func (fs *powercutFS) OpenDir(cancel <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	d, st := fs.dir(input.NodeId)
	if !st.Ok() {
		return st
	}
	names := make([]string, 0, len(d.children))
	for name := range d.children {
		names = append(names, name)
	}
	sort.Strings(names)
	h := &dirHandle{entries: []fuse.DirEntry{{Name: ".", Mode: syscall.S_IFDIR, Ino: d.ino}, {Name: "..", Mode: syscall.S_IFDIR}}}
	for _, name := range names {
		c := fs.inodes[d.children[name]]
		h.entries = append(h.entries, fuse.DirEntry{Name: name, Mode: c.mode, Ino: c.ino})
	}
	out.Fh = fs.nextFh
	fs.nextFh++
	fs.dirs[out.Fh] = h
	return fuse.OK
}

func (fs *powercutFS) ReadDir(cancel <-chan struct{}, input *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	h := fs.dirs[input.Fh]
	if h == nil {
		return fuse.EBADF
	}
	for i := int(input.Offset); i < len(h.entries); i++ {
		e := h.entries[i]
		e.Off = uint64(i + 1)
		if !out.AddDirEntry(e) {
			break
		}
	}
	return fuse.OK
}

func (fs *powercutFS) ReleaseDir(input *fuse.ReleaseIn) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.dirs, input.Fh)
}

func (fs *powercutFS) Access(cancel <-chan struct{}, input *fuse.AccessIn) fuse.Status { return fuse.OK }

func (fs *powercutFS) StatFs(cancel <-chan struct{}, header *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	out.Bsize, out.Frsize, out.NameLen = pageSize, pageSize, 255
	out.Blocks, out.Bfree, out.Bavail = 1<<24, 1<<23, 1<<23
	out.Files, out.Ffree = 1<<20, 1<<19
	return fuse.OK
}

// cut: the power goes. Dirty pages survive with probability keep; everything else reverts to durable.
func (fs *powercutFS) cut(keep float64) string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	files, pages, kept, entries := 0, 0, 0, 0
	for _, n := range fs.inodes {
		n.mode, n.uid, n.gid = n.dMode, n.dUid, n.dGid
		n.opens = 0
		if n.isDir() {
			for name, ino := range n.children {
				if n.durableChildren[name] != ino {
					entries++
				}
			}
			entries += len(n.durableChildren) - countSame(n.children, n.durableChildren)
			n.children = copyEntries(n.durableChildren)
			continue
		}
		if len(n.dirty) > 0 {
			files++
		}
		for p := range n.dirty {
			pages++
			start := p * pageSize
			if keep > 0 && fs.rng.Float64() < keep && start < int64(len(n.data)) {
				// Written back before the power went: this page (and the size up to its end).
				end := min(start+pageSize, int64(len(n.data)))
				if int64(len(n.durable)) < end {
					n.durable = append(n.durable, make([]byte, end-int64(len(n.durable)))...)
				}
				copy(n.durable[start:end], n.data[start:end])
				kept++
			}
		}
		n.data = append([]byte(nil), n.durable...)
		n.dirty = map[int64]bool{}
	}
	// Whatever no durable name reaches is gone; count the names again.
	reachable := map[uint64]bool{}
	var walk func(*inode)
	walk = func(d *inode) {
		reachable[d.ino] = true
		for _, ino := range d.children {
			c := fs.inodes[ino]
			if c == nil || reachable[ino] {
				continue
			}
			if c.isDir() {
				walk(c)
			} else {
				reachable[ino] = true
			}
		}
	}
	walk(fs.inodes[fuse.FUSE_ROOT_ID])
	for ino := range fs.inodes {
		if !reachable[ino] {
			delete(fs.inodes, ino)
		} else {
			fs.inodes[ino].links, fs.inodes[ino].durLinks = 0, 0
		}
	}
	fs.inodes[fuse.FUSE_ROOT_ID].links, fs.inodes[fuse.FUSE_ROOT_ID].durLinks = 1, 1
	for _, d := range fs.inodes {
		if d.isDir() {
			for _, ino := range d.children {
				if c := fs.inodes[ino]; c != nil {
					c.links++
					c.durLinks++
				}
			}
		}
	}
	fs.dirs = map[uint64]*dirHandle{}
	return fmt.Sprintf("ok cut files=%d pages=%d kept=%d entries=%d", files, pages, kept, entries)
}

func countSame(a, b map[string]uint64) int {
	same := 0
	for name, ino := range a {
		if b[name] == ino {
			same++
		}
	}
	return same
}

func (fs *powercutFS) stats() string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	bytes, durable := 0, 0
	for _, n := range fs.inodes {
		bytes += len(n.data)
		durable += len(n.durable)
	}
	return fmt.Sprintf("ok stats inodes=%d bytes=%d durable=%d", len(fs.inodes), bytes, durable)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: reseat-powercut-fs <mountpoint> [dir...]")
		os.Exit(2)
	}
	fs := newFS()
	root := fs.inodes[fuse.FUSE_ROOT_ID]
	for _, name := range os.Args[2:] {
		d := fs.newInode(syscall.S_IFDIR|0o755, 0, 0)
		root.children[name] = d.ino
		root.durableChildren[name] = d.ino
		d.links, d.durLinks = 1, 1
	}
	server, err := fuse.NewServer(fs, os.Args[1], &fuse.MountOptions{
		AllowOther:         true, // containers running as another user
		DirectMount:        true, // no fusermount needed when root
		FsName:             "reseat-powercut",
		Name:               "powercut",
		Options:            []string{"default_permissions"},
		DisableXAttrs:      true,
		DisableReadDirPlus: true,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "mount:", err)
		os.Exit(1)
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		fmt.Fprintln(os.Stderr, "mount:", err)
		os.Exit(1)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		_ = server.Unmount()
		os.Exit(0)
	}()
	fmt.Println("ready")
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "cut":
			keep := 0.0
			if len(fields) > 1 {
				keep, _ = strconv.ParseFloat(fields[1], 64)
			}
			fmt.Println(fs.cut(keep))
		case "stats":
			fmt.Println(fs.stats())
		default:
			fmt.Println("error unknown command", fields[0])
		}
	}
	for attempt := 0; attempt < 50; attempt++ {
		if server.Unmount() == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "unmount failed")
	os.Exit(1)
}
