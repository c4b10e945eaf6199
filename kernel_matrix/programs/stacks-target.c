/* The stack tests' target (kernel_matrix and tests/e2e/test_stacks.py): until
 * killed, spins in user space in kmx_user_spin, then reads /dev/zero in the
 * kernel from kmx_kernel_reads. The read is a raw syscall in that function:
 * libc's read() keeps no frame, and a frame-pointer walk from inside it
 * would skip its caller. x86_64. */
#include <fcntl.h>

static char buf[1 << 20];
volatile unsigned long sink;

__attribute__((noinline)) void kmx_user_spin(void)
{
    for (unsigned long i = 0; i < 20000000UL; i++)
        sink += i;
}

__attribute__((noinline)) void kmx_kernel_reads(int fd)
{
    for (int i = 0; i < 400; i++) {
        long ret;
        __asm__ volatile("syscall" : "=a"(ret) : "0"(0L), "D"((long)fd), "S"(buf), "d"(sizeof buf)
                         : "rcx", "r11", "memory");
        sink += ret;
    }
}

__attribute__((noinline)) void kmx_round(int fd)
{
    kmx_user_spin();
    kmx_kernel_reads(fd);
}

int main(void)
{
    int fd = open("/dev/zero", O_RDONLY);
    if (fd < 0)
        return 1;
    for (;;)
        kmx_round(fd);
}
