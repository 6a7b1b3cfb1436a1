/* ProcessPrng for Wine 8, which lacks bcryptprimitives.dll: Rust's
 * standard library (1.78 and later) takes its randomness from it on
 * Windows 10 and later. Used only to run icsflow.exe under Wine in
 * `make windows`; never shipped. */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    return BCryptGenRandom(NULL, data, (ULONG)length, BCRYPT_USE_SYSTEM_PREFERRED_RNG) == 0;
}
