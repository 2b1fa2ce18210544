package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// errNotRegular is a storage path that is a symlink, a directory or another non-regular
// file, or that passes through a symlink: such paths are never unlinked.
var errNotRegular = errors.New("not a regular file inside the attachments directory")

// attachmentRoot confines every file operation of attachment_cleanup to the attachments
// directory: paths are resolved against it, symlinks are never followed, and nothing
// outside it is ever unlinked (jobs.md §8.3).
type attachmentRoot struct {
	abs  string
	root *os.Root
}

// openAttachmentRoot opens the directory at path (relative paths against the working
// directory). A missing directory is an error wrapping fs.ErrNotExist.
func openAttachmentRoot(path string) (*attachmentRoot, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, err
	}
	return &attachmentRoot{abs: abs, root: r}, nil
}

func (r *attachmentRoot) Close() error { return r.root.Close() }

// rel turns a storage_path (relative to the root, or absolute) into a clean path
// relative to the root; ok is false for a path outside it or for the root itself.
func (r *attachmentRoot) rel(storagePath string) (string, bool) {
	p := storagePath
	if filepath.IsAbs(p) {
		var err error
		if p, err = filepath.Rel(r.abs, filepath.Clean(p)); err != nil {
			return "", false
		}
	}
	p = filepath.Clean(p)
	if p == "." || p == ".." || strings.HasPrefix(p, ".."+string(filepath.Separator)) || filepath.IsAbs(p) {
		return "", false
	}
	return p, true
}

// absolute is the absolute form of a path relative to the root.
func (r *attachmentRoot) absolute(rel string) string { return filepath.Join(r.abs, rel) }

// regularFile returns the file information of rel when it is a regular file reached
// without passing through a symlink, errNotRegular when it is something else, or the
// error of the lookup (fs.ErrNotExist when it is gone).
func (r *attachmentRoot) regularFile(rel string) (fs.FileInfo, error) {
	parts := strings.Split(rel, string(filepath.Separator))
	for i := 1; i < len(parts); i++ {
		info, err := r.root.Lstat(filepath.Join(parts[:i]...))
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			return nil, errNotRegular // a symlink or a file on the way
		}
	}
	info, err := r.root.Lstat(rel)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, errNotRegular
	}
	return info, nil
}

// remove unlinks rel, then removes the parent directories it left empty, up to but not
// including the root.
func (r *attachmentRoot) remove(rel string) error {
	if err := r.root.Remove(rel); err != nil {
		return err
	}
	for dir := filepath.Dir(rel); dir != "." && dir != string(filepath.Separator); dir = filepath.Dir(dir) {
		if r.root.Remove(dir) != nil {
			return nil // not empty (or gone): stop climbing
		}
	}
	return nil
}

// walk calls fn for every regular file under the root, depth first. Directories are read
// in chunks, so memory does not grow with the size of a directory; symlinks and
// non-regular files are skipped. An error reading a directory goes to onErr and the walk
// goes on; an error from fn or ctx ends it.
func (r *attachmentRoot) walk(ctx context.Context, fn func(rel string, info fs.FileInfo) error, onErr func(path string, err error)) error {
	return r.walkDir(ctx, ".", fn, onErr)
}

func (r *attachmentRoot) walkDir(ctx context.Context, dir string, fn func(string, fs.FileInfo) error, onErr func(string, error)) error {
	f, err := r.root.Open(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			onErr(dir, err)
		}
		return nil
	}
	defer f.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, rerr := f.ReadDir(256)
		for _, e := range entries {
			rel := filepath.Join(dir, e.Name())
			switch {
			case e.Type()&fs.ModeSymlink != 0:
			case e.IsDir():
				if err := r.walkDir(ctx, rel, fn, onErr); err != nil {
					return err
				}
			case e.Type().IsRegular():
				info, err := e.Info()
				if err != nil {
					if !errors.Is(err, fs.ErrNotExist) {
						onErr(rel, err)
					}
					continue
				}
				if err := fn(rel, info); err != nil {
					return err
				}
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			onErr(dir, fmt.Errorf("read directory: %w", rerr))
			return nil
		}
	}
}
