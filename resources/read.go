package resources

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Input size limits. One object can never be larger than etcd's request
// limit (1.5 MiB) or a Kubernetes object (also ~1.5 MiB), so a document (the
// text between `---` lines) of more than MaxDocumentBytes is not a manifest:
// it is refused as soon as it is seen, before it is held in memory. A JSON
// array or List of 10,000 small objects (a few MB) is one document and fits.
const (
	MaxDocumentBytes = 16 << 20
	MaxInputBytes    = 256 << 20
)

// ErrTooLarge is wrapped by ReadInput's size errors.
var ErrTooLarge = errors.New("input too large")

// ReadInput reads r (named name in errors, e.g. a file name or "stdin")
// until EOF, refusing it once one document passes MaxDocumentBytes or the
// whole input passes MaxInputBytes. Endless input (/dev/zero, `yes`) thus
// fails after at most MaxDocumentBytes.
func ReadInput(r io.Reader, name string) ([]byte, error) {
	return readInput(r, name, MaxDocumentBytes, MaxInputBytes, 0)
}

// ReadInputSized is ReadInput for input of a known size (a regular file):
// the buffer is allocated once instead of grown by doubling.
func ReadInputSized(r io.Reader, name string, size int64) ([]byte, error) {
	return readInput(r, name, MaxDocumentBytes, MaxInputBytes, size)
}

func readInput(r io.Reader, name string, maxDoc, maxInput int, sizeHint int64) ([]byte, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf bytes.Buffer
	if sizeHint > 0 && sizeHint <= int64(maxInput) {
		buf.Grow(int(sizeHint) + 1)
	}
	line, docLine, docStart := 1, 1, 0
	atLineStart := true
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			complete := chunk[len(chunk)-1] == '\n'
			if atLineStart && (complete || err == io.EOF) && docSeparator.Match(bytes.TrimRight(chunk, "\n")) {
				docStart, docLine = buf.Len()+len(chunk), line+1
			}
			buf.Write(chunk)
			if complete {
				line++
			}
			atLineStart = complete
			if buf.Len()-docStart > maxDoc {
				return nil, fmt.Errorf("%s: the document starting at line %d is larger than %s, the limit for one document: %w",
					name, docLine, sizeString(maxDoc), ErrTooLarge)
			}
			if buf.Len() > maxInput {
				return nil, fmt.Errorf("%s: input larger than %s, the limit for one input: %w", name, sizeString(maxInput), ErrTooLarge)
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return buf.Bytes(), nil
		default:
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
	}
}

func sizeString(n int) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
