package check

import (
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// binaryInfo is what the executable's header says.
type binaryInfo struct {
	format       string // "ELF", "Mach-O" or "PE"
	goos, goarch string // "" when the header names something Go does not build for
	machine      string // the header's own name for the architecture
	interp       string // ELF: the program interpreter, when dynamically linked
	needed       []string
}

// readHeader reads the executable header of the file at path.
func readHeader(path string) (binaryInfo, error) {
	if f, err := elf.Open(path); err == nil {
		defer f.Close()
		return elfInfo(f)
	}
	if f, err := macho.Open(path); err == nil {
		defer f.Close()
		return machoInfo(f.Cpu), nil
	}
	if f, err := macho.OpenFat(path); err == nil {
		defer f.Close()
		// A universal binary runs where one of its slices does.
		info := binaryInfo{format: "Mach-O"}
		for _, a := range f.Arches {
			if i := machoInfo(a.Cpu); i.goarch == runtime.GOARCH || info.goarch == "" {
				info = i
			}
		}
		return info, nil
	}
	if f, err := pe.Open(path); err == nil {
		defer f.Close()
		return peInfo(f.Machine), nil
	}
	return binaryInfo{}, errors.New("not an ELF, Mach-O or PE executable")
}

func elfInfo(f *elf.File) (binaryInfo, error) {
	info := binaryInfo{format: "ELF", goos: "linux", machine: f.Machine.String()}
	switch {
	case f.OSABI == elf.ELFOSABI_FREEBSD:
		info.goos = "freebsd"
	case f.Section(".note.netbsd.ident") != nil:
		info.goos = "netbsd"
	case f.Section(".note.openbsd.ident") != nil:
		info.goos = "openbsd"
	}
	le := f.ByteOrder.String() == "LittleEndian"
	endian := func(little, big string) string {
		if le {
			return little
		}
		return big
	}
	switch f.Machine {
	case elf.EM_X86_64:
		info.goarch = "amd64"
	case elf.EM_386:
		info.goarch = "386"
	case elf.EM_AARCH64:
		info.goarch = "arm64"
	case elf.EM_ARM:
		info.goarch = "arm"
	case elf.EM_PPC64:
		info.goarch = endian("ppc64le", "ppc64")
	case elf.EM_S390:
		info.goarch = "s390x"
	case elf.EM_RISCV:
		info.goarch = "riscv64"
	case elf.EM_LOONGARCH:
		info.goarch = "loong64"
	case elf.EM_MIPS:
		info.goarch = endian("mipsle", "mips")
		if f.Class == elf.ELFCLASS64 {
			info.goarch = endian("mips64le", "mips64")
		}
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return info, fmt.Errorf("reading the ELF interpreter: %w", err)
		}
		info.interp = strings.TrimRight(string(b), "\x00")
	}
	// A static binary has no dynamic section: ErrNoSymbols is its answer.
	libs, err := f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return info, fmt.Errorf("reading the ELF dynamic section: %w", err)
	}
	info.needed = libs
	return info, nil
}

func machoInfo(cpu macho.Cpu) binaryInfo {
	info := binaryInfo{format: "Mach-O", goos: "darwin", machine: cpu.String()}
	switch cpu {
	case macho.CpuAmd64:
		info.goarch = "amd64"
	case macho.CpuArm64:
		info.goarch = "arm64"
	}
	return info
}

func peInfo(machine uint16) binaryInfo {
	info := binaryInfo{format: "PE", goos: "windows", machine: fmt.Sprintf("0x%x", machine)}
	switch machine {
	case pe.IMAGE_FILE_MACHINE_AMD64:
		info.goarch = "amd64"
	case pe.IMAGE_FILE_MACHINE_ARM64:
		info.goarch = "arm64"
	case pe.IMAGE_FILE_MACHINE_I386:
		info.goarch = "386"
	}
	return info
}

// checkHeader is the platform and static checks: both read only the file.
func checkHeader(bin string) []Result {
	here := runtime.GOOS + "/" + runtime.GOARCH
	info, err := readHeader(bin)
	if err != nil {
		return []Result{
			{ID: idPlatform, Status: Fail, Detail: err.Error(),
				Fix: "check the compiled plugin binary (go build -o PLUGIN ./cmd/PLUGIN), not a script or source file"},
			{ID: idStatic, Status: Skip, Detail: "not an executable (see platform)"},
		}
	}
	built := info.goos + "/" + info.goarch
	if info.goarch == "" {
		built = info.goos + "/" + info.machine
	}
	platform := Result{ID: idPlatform, Status: Pass, Detail: fmt.Sprintf("%s %s executable: runs here", built, info.format)}
	if built != here {
		platform = Result{ID: idPlatform, Status: Fail,
			Detail: fmt.Sprintf("built for %s (%s), but this machine is %s", built, info.format, here),
			Fix:    fmt.Sprintf("build it with GOOS=%s GOARCH=%s, the system of the Vault server that runs it", runtime.GOOS, runtime.GOARCH)}
	} else if fi, err := os.Stat(bin); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0 {
		platform = Result{ID: idPlatform, Status: Fail, Detail: "the file is not executable (mode " + fi.Mode().Perm().String() + ")",
			Fix: "chmod +x " + bin + ": Vault executes the file in its plugin_directory"}
	}
	return []Result{platform, staticResult(info)}
}

// staticResult says whether the binary runs without a C library. Only an
// ELF binary can be static: Go's macOS and Windows binaries always link
// the system's libraries, which every such system has.
func staticResult(info binaryInfo) Result {
	if info.format != "ELF" {
		return Result{ID: idStatic, Status: Skip,
			Detail: fmt.Sprintf("%s binaries always link the system's own libraries: nothing to check", info.format)}
	}
	if info.interp == "" && len(info.needed) == 0 {
		return Result{ID: idStatic, Status: Pass, Detail: "statically linked: runs on any Linux, the Alpine-based Vault image too"}
	}
	var what []string
	if info.interp != "" {
		what = append(what, "interpreter "+info.interp)
	}
	if len(info.needed) > 0 {
		what = append(what, "needs "+strings.Join(info.needed, ", "))
	}
	// It runs where its C library is, as on this machine: a warning, not
	// a failure, since only some hosts lack it.
	return Result{ID: idStatic, Status: Warn,
		Detail: "dynamically linked (" + strings.Join(what, "; ") + "): it runs where that C library is, but not on the Alpine-based Vault image",
		Fix:    "build with CGO_ENABLED=0, whether main is the bare SDK's or serve.Run (neither needs cgo)"}
}
