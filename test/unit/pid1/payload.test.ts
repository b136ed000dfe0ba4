// What a VM's init reads in stage 1 to reach its payload disk: /etc/modules with modules.dep, and
// /etc/fstab.

import { describe, expect, it } from "vitest";
import { parseFstab } from "../../../init/pid1/fstab";
import { loadOrder, moduleName, parseModulesDep, parseModulesList } from "../../../init/pid1/kmod";

// As qemu/kernel.sh writes it for Debian's kernel (depmod's format and order).
const MODULES_DEP = `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/crypto/crc32c_generic.ko:
kernel/lib/libcrc32c.ko:
kernel/fs/erofs/erofs.ko: kernel/lib/libcrc32c.ko
kernel/arch/x86/crypto/crc32c-intel.ko.xz:
`;

describe("kernel modules", () => {
  it("names modules as the kernel does", () => {
    expect(moduleName("kernel/fs/erofs/erofs.ko")).toBe("erofs");
    expect(moduleName("kernel/arch/x86/crypto/crc32c-intel.ko.xz")).toBe("crc32c_intel");
  });

  it("reads /etc/modules: one name per line, comments and options left out", () => {
    expect(parseModulesList("# the disk\nvirtio_mmio\n\nvirtio-blk  # its driver\nerofs opt=1\n")).toEqual(["virtio_mmio", "virtio_blk", "erofs"]);
  });

  it("loads every module once, each after what it depends on", () => {
    const dep = parseModulesDep(MODULES_DEP);
    expect(dep.get("crc32c_intel")?.path).toBe("kernel/arch/x86/crypto/crc32c-intel.ko.xz");
    const { files, missing } = loadOrder(["virtio_mmio", "virtio_blk", "crc32c_generic", "erofs", "nvme"], dep);
    expect(missing).toEqual(["nvme"]);
    expect(files).toEqual([
      "kernel/drivers/virtio/virtio_ring.ko",
      "kernel/drivers/virtio/virtio.ko",
      "kernel/drivers/virtio/virtio_mmio.ko",
      "kernel/drivers/block/virtio_blk.ko",
      "kernel/crypto/crc32c_generic.ko",
      "kernel/lib/libcrc32c.ko",
      "kernel/fs/erofs/erofs.ko",
    ]);
  });
});

describe("/etc/fstab", () => {
  it("reads device, mount point, type and options; leaves swap out and marks noauto", () => {
    const entries = parseFstab(
      [
        "# the payload disk",
        "/dev/vda /usr erofs ro 0 0",
        "tmpfs /var/tmp tmpfs nosuid,nodev,size=64m,mode=1777 0 0",
        "/dev/vdb none swap sw 0 0",
        "/dev/vdc /mnt/with\\040space ext4 defaults,noauto,noatime 0 2",
        "proc /proc proc",
      ].join("\n"),
    );
    expect(entries).toEqual([
      { source: "/dev/vda", target: "/usr", type: "erofs", flags: ["rdonly"], data: "", noauto: false, line: 2 },
      { source: "tmpfs", target: "/var/tmp", type: "tmpfs", flags: ["nosuid", "nodev"], data: "size=64m,mode=1777", noauto: false, line: 3 },
      { source: "/dev/vdc", target: "/mnt/with space", type: "ext4", flags: ["noatime"], data: "", noauto: true, line: 5 },
      { source: "proc", target: "/proc", type: "proc", flags: [], data: "", noauto: false, line: 6 },
    ]);
  });
});
