/* kernel_matrix: the uprobe test's target. `kmx-uprobe-target A B` calls
 * kmx_add(A, B) once and exits 0 if the sum is right. */
#include <stdlib.h>

__attribute__((noinline, used)) int kmx_add(int a, int b)
{
    __asm__ volatile("" ::: "memory"); /* keep the call and the function */
    return a + b;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int a = atoi(argv[1]), b = atoi(argv[2]);
    return kmx_add(a, b) == a + b ? 0 : 1;
}
